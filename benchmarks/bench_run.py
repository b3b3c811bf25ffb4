"""How fast a harness runs over a data set: the stage-synchronous executor against three baselines.

    python benchmarks/bench_run.py                       # plan_solve, 64 problems, SmolLM2 default, vLLM
    python benchmarks/bench_run.py --examples 16 --engine transformers --interpreter-examples 4

Four ways in one process, on the same harness, data and engine (generated tokens per second):

  (a) executor     the stage-synchronous executor: one engine call per stage for all examples
  (b) interpreter  the per-example interpreter, one request at a time (on the first
                   --interpreter-examples problems: its rate is per token, so a subset measures it)
  (c) threads      per-example programs on a pool of --threads threads submitting to the same engine
                   through a batching front (what a server does with concurrent HTTP requests: each engine
                   call takes every request waiting at that moment): the reference code's pattern
  (d) raw          the engine alone on exactly the batches (a) sent, one call per stage: the limit

Ratios a/b, a/c and a/d are printed; all four use the same per-request seeds.

With --servers N (or --server-url URL, repeated, for servers already running), one more row:

  (s) servers      the same executor with the openai engine over N vLLM server replicas of the model
                   (`python -m vllm.entrypoints.openai.api_server`, started here on free 127.0.0.1 ports,
                   float32 on CPU, and stopped at the end): each stage's wave spread over the replicas

    python benchmarks/bench_run.py --examples 16 --servers 2 --set plan_tokens=64 --set solve_tokens=64

With --fan-out (default harness: self_ask), the fan-out stage's two schedules instead:

  (a) one wave     the executor: every item of every example in one engine call
  (e) per item     the same executor, but each item of a fan-out sent as its own engine call (what a
                   harness written as a per-example Python loop over sub-questions does)

    python benchmarks/bench_run.py --fan-out --examples 16 --set decompose_tokens=64 --set sub_tokens=48
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harnessc.compiler import compile_file  # noqa: E402
from harnessc.engines.base import ChatRequest, Completion  # noqa: E402
from harnessc.runtime.executor import StageSynchronousExecutor  # noqa: E402
from harnessc.runtime.harness_setup import load_examples  # noqa: E402
from harnessc.runtime.interpreter import PerExampleInterpreter  # noqa: E402
from harnessc.runtime.program import Program  # noqa: E402


class RecordingEngine:
    """Passes calls through and remembers each batch (for the raw replay) and the generated tokens."""

    def __init__(self, engine) -> None:
        self.engine, self.batches, self.tokens = engine, [], 0
        self.name = engine.name

    def chat(self, requests):
        self.batches.append(list(requests))
        results = self.engine.chat(requests)
        self.tokens += _tokens(results)
        return results


class BatchingFront:
    """Concurrent callers each submit one request; a single loop sends whatever is waiting as one batch."""

    def __init__(self, engine) -> None:
        self.engine, self.tokens, self.calls = engine, 0, 0
        self.name = engine.name
        self.waiting: queue.Queue[tuple[ChatRequest, Future]] = queue.Queue()
        self.stopped = threading.Event()
        self.loop = threading.Thread(target=self._serve, daemon=True)
        self.loop.start()

    def chat(self, requests):
        futures = []
        for request in requests:
            future: Future = Future()
            self.waiting.put((request, future))
            futures.append(future)
        return [future.result() for future in futures]

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                first = self.waiting.get(timeout=0.05)
            except queue.Empty:
                continue
            batch = [first]
            while True:
                try:
                    batch.append(self.waiting.get_nowait())
                except queue.Empty:
                    break
            results = self.engine.chat([request for request, _ in batch])
            self.tokens += _tokens(results)
            self.calls += 1
            for (_, future), result in zip(batch, results):
                future.set_result(result)

    def close(self) -> None:
        self.stopped.set()
        self.loop.join()


def _tokens(results: list[list[Completion]]) -> int:
    return sum(len(completion.token_ids) for completions in results for completion in completions)


def measure(name: str, work, engine=None) -> dict:
    if hasattr(getattr(engine, "llm", None), "reset_prefix_cache"):
        engine.llm.reset_prefix_cache()  # each way starts cold: (d) replays (a)'s exact prompts
    started = time.perf_counter()
    tokens = work()
    seconds = time.perf_counter() - started
    return {"way": name, "tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--harness", default=str(REPO / "harnesses/plan_solve.harness"))
    parser.add_argument("--data", default=str(REPO / "examples/data/math.jsonl"))
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--interpreter-examples", type=int, default=8)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--engine", choices=("vllm", "transformers"), default=None)
    parser.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M-Instruct")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=["plan_tokens=256", "solve_tokens=384"],
        help="harness parameter overrides (default: plan_tokens=256 solve_tokens=384)",
    )
    parser.add_argument("--servers", type=int, default=0, help="also (s): the executor over N server replicas")
    parser.add_argument("--server-url", action="append", default=[], help="(s) over this running server (repeat)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--fan-out", action="store_true", help="one wave vs per-item calls (self_ask)")
    args = parser.parse_args()
    if args.fan_out:
        fan_out(args)
        return

    from harnessc.engines import create_engine

    overrides = dict(item.split("=", 1) for item in args.overrides)
    harness = compile_file(args.harness, purpose="run", overrides=overrides).require()
    rows = load_examples(harness, args.data, limit=args.examples)
    program = Program(harness, seed=0)
    engine = create_engine(args.engine, args.model)
    StageSynchronousExecutor(program, engine).run(rows[:2])  # warm-up, not measured

    recorder = RecordingEngine(engine)
    results = [
        measure("(a) executor", lambda: _run(StageSynchronousExecutor(program, recorder), rows, recorder), engine)
    ]
    interpreter_rows = rows[: args.interpreter_examples]
    single = RecordingEngine(engine)
    results.append(
        measure(
            "(b) interpreter", lambda: _run(PerExampleInterpreter(program, single), interpreter_rows, single), engine
        )
    )
    front = BatchingFront(engine)
    results.append(measure(f"(c) {args.threads} threads", lambda: _threads(program, front, rows, args.threads), engine))
    front.close()
    replay = lambda: sum(_tokens(engine.chat(batch)) for batch in recorder.batches)  # noqa: E731
    results.append(measure("(d) raw engine", replay, engine))
    if args.servers or args.server_url:
        results.append(_over_servers(args, program, rows))
    rate = {row["way"][:3]: row["tokens_per_s"] for row in results}
    ratios = {"a/b": rate["(a)"] / rate["(b)"], "a/c": rate["(a)"] / rate["(c)"], "a/d": rate["(a)"] / rate["(d)"]}
    if "(s)" in rate:
        ratios["a/s"] = rate["(a)"] / rate["(s)"]
    machine = f"{platform.processor() or platform.machine()}, {platform.python_version()}, engine {engine.name}"
    if args.json:
        print(
            json.dumps(
                {
                    "results": results,
                    "ratios": ratios,
                    "machine": machine,
                    "examples": len(rows),
                    "engine_calls_a": len(recorder.batches),
                    "engine_calls_c": front.calls,
                },
                indent=2,
            )
        )
        return
    print(f"{Path(args.harness).stem}, {len(rows)} examples ({len(interpreter_rows)} for (b)), {machine}")
    print(f"{'way':<18} {'tokens':>8} {'seconds':>9} {'tokens/s':>9}")
    for row in results:
        print(f"{row['way']:<18} {row['tokens']:>8} {row['seconds']:>9.1f} {row['tokens_per_s']:>9.1f}")
    print(f"engine calls: (a) {len(recorder.batches)}, (c) {front.calls}")
    for row in results:
        if "requests_per_replica" in row:
            print(f"{row['way']}: requests per replica (warm-up included) {row['requests_per_replica']}")
    print("  ".join(f"{name} = {value:.2f}" for name, value in ratios.items()))


def _over_servers(args, program: Program, rows) -> dict:
    """Row (s): the executor with the openai engine over running replicas, or over --servers N started here."""
    from harnessc.engines import create_engine
    from harnessc.engines.default_model import default_model_dir

    sys.path.insert(0, str(REPO / "tests"))
    from vllm_servers import start_server, wait_healthy

    model = args.model or str(default_model_dir())
    started = []
    logs = Path("/tmp") / f"bench-run-servers-{int(time.time())}"
    logs.mkdir(parents=True, exist_ok=True)
    cores = sorted(os.sched_getaffinity(0))
    try:
        for replica in range(args.servers):
            started.append(start_server(Path(model), logs / f"replica{replica}.log", cores[replica % len(cores)]))
        wait_healthy(started)
        engine = create_engine("openai", model, base_urls=args.server_url + [server.url for server in started])
        StageSynchronousExecutor(program, engine).run(rows[:2])  # warm-up, not measured
        recorder = RecordingEngine(engine)
        replicas = len(engine.base_urls)
        row = measure(
            f"(s) {replicas} servers", lambda: _run(StageSynchronousExecutor(program, recorder), rows, recorder)
        )
        row["requests_per_replica"] = list(engine.requests_sent().values())
        return row
    finally:
        for server in started:
            server.stop()


class PerItemExecutor(StageSynchronousExecutor):
    """The executor, but a fan-out's items go to the engine one request per call (the baseline)."""

    def call_engine(self, work) -> None:
        plain = [item for item in work if item[0].each is None]
        if plain:
            super().call_engine(plain)
        for stage, state, iteration in (item for item in work if item[0].each is not None):
            requests = self.program.prepare_requests(stage, state, iteration)
            if requests:
                started = time.perf_counter()
                results = [self.engine.chat([request])[0] for request in requests]
                self.program.finish_requests(stage, state, results, time.perf_counter() - started)


def fan_out(args) -> None:
    from harnessc.engines import create_engine

    path = args.harness if "--harness" in sys.argv else str(REPO / "harnesses/self_ask.harness")
    overrides = dict(item.split("=", 1) for item in args.overrides[2:])  # not plan_solve's defaults
    overrides.setdefault("solve_tokens", "64")
    harness = compile_file(path, purpose="run", overrides=overrides).require()
    rows = load_examples(harness, args.data, limit=args.examples)
    program = Program(harness, seed=0)
    engine = create_engine(args.engine, args.model)
    StageSynchronousExecutor(program, engine).run(rows[:2])  # warm-up, not measured
    results = []
    for name, runner in (("(a) one wave", StageSynchronousExecutor), ("(e) per item", PerItemExecutor)):
        recorder = RecordingEngine(engine)
        records: list = []
        work = lambda runner=runner, recorder=recorder, records=records: _run_records(  # noqa: E731
            runner(program, recorder), rows, recorder, records
        )
        row = measure(name, work, engine)
        row["engine_calls"] = len(recorder.batches)
        fanned = [call for record in records for call in record.calls if call.item is not None]
        row["items"] = len(fanned)
        results.append(row)
    machine = f"{platform.processor() or platform.machine()}, {platform.python_version()}, engine {engine.name}"
    ratio = results[0]["tokens_per_s"] / results[1]["tokens_per_s"]
    speedup = results[1]["seconds"] / results[0]["seconds"]
    if args.json:
        print(json.dumps({"results": results, "speedup": speedup, "machine": machine, "examples": len(rows)}, indent=2))
        return
    print(f"{Path(path).stem}, {len(rows)} examples, {machine}, {overrides}")
    print(f"{'way':<14} {'calls':>6} {'items':>6} {'tokens':>8} {'seconds':>9} {'tokens/s':>9}")
    for row in results:
        print(
            f"{row['way']:<14} {row['engine_calls']:>6} {row['items']:>6} {row['tokens']:>8} "
            f"{row['seconds']:>9.1f} {row['tokens_per_s']:>9.1f}"
        )
    print(f"a/e tokens/s = {ratio:.2f}, wall-clock speed-up = {speedup:.2f}")


def _run_records(runner, rows, counter, records: list) -> int:
    records += runner.run(rows)
    return counter.tokens


def _run(runner, rows, counter) -> int:
    runner.run(rows)
    return counter.tokens


def _threads(program: Program, front: BatchingFront, rows, threads: int) -> int:
    interpreter = PerExampleInterpreter(program, front)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda row: interpreter.run([row]), rows))
    return front.tokens


if __name__ == "__main__":
    main()
