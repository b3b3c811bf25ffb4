"""The stage-synchronous executor: every ready LLM stage runs for all live examples in one engine call.

The program's top-level stages are grouped into waves (a stage's wave is one more than the latest wave of
what it reads). Per wave: the deterministic `let` stages run for every example, then all the wave's LLM
stages are rendered for every example (× n samples) and sent as ONE engine call, then the wave's loops
iterate, each iteration step batched over the examples that have not converged. The engine's own
batching and prefix cache do the rest; requests are sorted so that shared prefixes sit together.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from harnessc import ir
from harnessc.console import step_phase
from harnessc.dependencies import direct_reads
from harnessc.engines.base import ChatRequest, Completion, Engine
from harnessc.runtime.program import ExampleState, Program
from harnessc.runtime.trace import ExampleRecord


@dataclass(frozen=True)
class EngineCallStats:
    """Reported after each engine call (for progress bars and the run summary)."""

    stages: tuple[str, ...]
    requests: int
    generated_tokens: int
    seconds: float
    wave: int = 1  # which wave of the program made the call (1-based), of `waves`
    waves: int = 1


Observer = Callable[[EngineCallStats], None]


def plan_waves(program: Program) -> list[list[ir.Stage]]:
    """Group the program's top-level stages into waves of mutually independent stages."""
    level: dict[str, int] = {}
    waves: list[list[ir.Stage]] = []
    top_level = [stage for stage in program.stages if isinstance(stage, ir.LoopStage) or stage.loop is None]
    for stage in top_level:  # topological order: every read is already levelled
        reads = _reads_with_loop_bodies(program, stage)
        wave = 1 + max((level[name] for name in reads if name in level), default=-1)
        level[stage.name] = wave
        while len(waves) <= wave:
            waves.append([])
        waves[wave].append(stage)
    return waves


def _reads_with_loop_bodies(program: Program, stage: ir.Stage) -> set[str]:
    reads = set(direct_reads(stage))
    if isinstance(stage, ir.LoopStage):
        for step in stage.steps:
            inner = program.harness.stage(step) if isinstance(step, str) else None
            reads |= set(direct_reads(inner)) if inner is not None else set()
    return {_owner(program.harness, name) for name in reads}


def _owner(harness: ir.Harness, name: str) -> str:
    """A loop's inner stage is scheduled with its loop."""
    stage = harness.stage(name)
    return stage.loop if isinstance(stage, (ir.LlmStage, ir.LetStage)) and stage.loop else name


class StageSynchronousExecutor:
    def __init__(self, program: Program, engine: Engine, observer: Observer | None = None) -> None:
        self.program = program
        self.engine = engine
        self.observer = observer
        self.waves = plan_waves(program)
        self.wave = 1  # the wave under way (1-based)

    def run(
        self, examples: Iterable[tuple[int, dict[str, Any]] | tuple[int, dict[str, Any], int]]
    ) -> list[ExampleRecord]:
        """Run the program on `(row index, inputs[, replica])` examples; one record each, in order."""
        states = [self.program.new_example(*example) for example in examples]
        for number, wave in enumerate(self.waves, start=1):
            self.wave = number
            self.run_wave(wave, states)
        return [self.program.finish(state) for state in states]

    def run_wave(self, wave: Sequence[ir.Stage], states: Sequence[ExampleState]) -> None:
        for stage in wave:
            if isinstance(stage, ir.LetStage):
                for state in states:
                    self.program.run_let(stage, state)
        llm_stages = [stage for stage in wave if isinstance(stage, ir.LlmStage)]
        if llm_stages:
            self.call_engine([(stage, state, 0) for stage in llm_stages for state in states])
        for stage in wave:
            if isinstance(stage, ir.LoopStage):
                self.run_loop(stage, states)

    def run_loop(self, loop: ir.LoopStage, states: Sequence[ExampleState]) -> None:
        program = self.program
        for state in states:
            program.begin_loop(loop, state)
        live = [state for state in states if loop.name not in state.loops_done]
        iteration = 0
        while live and iteration < program.loop_bound(loop, live[0]):
            for step in loop.steps:
                live = self.run_loop_step(loop, step, live, iteration)
            for state in live:
                program.advance_loop(loop, state)
            live = [state for state in live if loop.name not in state.loops_done]
            iteration += 1

    def run_loop_step(
        self, loop: ir.LoopStage, step: str | ir.Until, live: list[ExampleState], iteration: int
    ) -> list[ExampleState]:
        if isinstance(step, ir.Until):
            return [state for state in live if not self.program.until_holds(step, loop, state)]
        stage = self.program.loop_step(step)
        if isinstance(stage, ir.LetStage):
            for state in live:
                self.program.run_let(stage, state)
        elif isinstance(stage, ir.LlmStage):
            self.call_engine([(stage, state, iteration) for state in live])
        return live

    def call_engine(self, work: list[tuple[ir.LlmStage, ExampleState, int]]) -> None:
        """Render every (stage, example) request, every item of a fan-out included, and send them all as
        one engine call."""
        pending: list[tuple[ir.LlmStage, ExampleState, ChatRequest]] = []
        prepared: list[tuple[ir.LlmStage, ExampleState, int]] = []  # (stage, example, its request count)
        for stage, state, iteration in work:
            requests = self.program.prepare_requests(stage, state, iteration)
            if requests:
                prepared.append((stage, state, len(requests)))
                pending += [(stage, state, request) for request in requests]
        if not pending:
            return
        order = sorted(range(len(pending)), key=lambda position: prefix_key(pending[position][2]))
        stages = tuple(dict.fromkeys(stage.name for stage, _, _ in pending))
        step_phase(f"wave {self.wave}/{len(self.waves)}: {', '.join(stages)} ({len(pending)} requests)")
        started = time.perf_counter()
        answers = self.engine.chat([pending[position][2] for position in order])
        seconds = time.perf_counter() - started
        results: list[list[Completion]] = [[] for _ in pending]
        for position, completions in zip(order, answers):
            results[position] = completions
        start = 0
        for stage, state, count in prepared:
            self.program.finish_requests(stage, state, results[start : start + count], seconds)
            start += count
        self.report(stages, len(pending), results, seconds)

    def report(self, stages: tuple[str, ...], requests: int, results: list[list[Completion]], seconds: float) -> None:
        if self.observer is None:
            return
        tokens = sum(len(completion.token_ids) for completions in results for completion in completions)
        self.observer(EngineCallStats(stages, requests, tokens, seconds, wave=self.wave, waves=len(self.waves)))


def prefix_key(request: ChatRequest) -> tuple:
    """Sort key putting requests with the same leading messages (system prompt, few-shot turns) together,
    so the engine's prefix cache sees each shared prefix in one run."""
    return tuple((message.role, message.content) for message in request.messages)
