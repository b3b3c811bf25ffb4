"""The per-example interpreter: the same IR and stage semantics, one example and one request at a time.

This is the straightforward reading of a harness (and the baseline the benchmark compares against): walk
the stages in order for one example, call the engine for each LLM stage, loop until the exit test holds.
On a deterministic engine it must produce exactly the stage-synchronous executor's traces (tested).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from harnessc import ir
from harnessc.engines.base import Engine
from harnessc.runtime.program import ExampleState, Program
from harnessc.runtime.trace import ExampleRecord


class PerExampleInterpreter:
    def __init__(self, program: Program, engine: Engine) -> None:
        self.program = program
        self.engine = engine

    def run(
        self, examples: Iterable[tuple[int, dict[str, Any]] | tuple[int, dict[str, Any], int]]
    ) -> list[ExampleRecord]:
        return [self.run_example(self.program.new_example(*example)) for example in examples]

    def run_example(self, state: ExampleState) -> ExampleRecord:
        for stage in self.program.stages:
            if isinstance(stage, ir.LoopStage):
                self.run_loop(stage, state)
            elif stage.loop is None:
                self.run_stage(stage, state, 0)
        return self.program.finish(state)

    def run_stage(self, stage: ir.LlmStage | ir.LetStage, state: ExampleState, iteration: int) -> None:
        if isinstance(stage, ir.LetStage):
            self.program.run_let(stage, state)
            return
        requests = self.program.prepare_requests(stage, state, iteration)
        if not requests:
            return
        started = time.perf_counter()
        results = [self.engine.chat([request])[0] for request in requests]  # one call per item of a fan-out
        self.program.finish_requests(stage, state, results, time.perf_counter() - started)

    def run_loop(self, loop: ir.LoopStage, state: ExampleState) -> None:
        program = self.program
        program.begin_loop(loop, state)
        for iteration in range(program.loop_bound(loop, state)):
            for step in loop.steps:
                if loop.name in state.loops_done:
                    return
                if isinstance(step, ir.Until):
                    program.until_holds(step, loop, state)
                else:
                    self.run_stage(program.loop_step(step), state, iteration)
            if loop.name in state.loops_done:
                return
            program.advance_loop(loop, state)
