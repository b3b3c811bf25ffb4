"""Cold-start time of `harnessc check`: the parser-table cache (harnessc/parser.py) on and off.

Each run is a fresh `python -m harnessc.cli check FILE` subprocess; the table gives the median wall and
CPU (user + system of the child) time of N runs. The baseline row is today's code path with the cache
disabled (HARNESSC_NO_PARSER_CACHE=1: the LALR tables are rebuilt at every start, as before the cache);
the cached row uses a fresh cache directory, warmed by one untimed run.

    python benchmarks/bench_startup.py                 # 15 runs each, harnesses/plan_solve.harness
    python benchmarks/bench_startup.py --runs 30 FILE
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _one(env: dict[str, str], file: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harnessc.cli", "check", file], env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(env: dict[str, str], file: str, runs: int) -> tuple[float, float]:
    _one(env, file)  # warm: writes the cache (cached row) and the .pyc files
    samples = [_one(env, file) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", default=str(ROOT / "harnesses" / "plan_solve.harness"))
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    base = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory() as cache_dir:
        rows = [
            ("baseline: no cache (tables rebuilt)", dict(base, HARNESSC_NO_PARSER_CACHE="1")),
            ("cached tables", dict(base, HARNESSC_CACHE_DIR=cache_dir, HARNESSC_NO_PARSER_CACHE="0")),
            ("`python -c pass` (interpreter floor)", None),
        ]
        results = []
        for label, env in rows:
            if env is None:
                samples = []
                for _ in range(args.runs):
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    start = time.perf_counter()
                    subprocess.run([sys.executable, "-c", "pass"], check=True)
                    wall = time.perf_counter() - start
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    samples.append((wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime))
                results.append(
                    (label, statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples))
                )
            else:
                results.append((label, *measure(env, args.file, args.runs)))
    base_cpu = results[0][2]
    print(f"`harnessc check {Path(args.file).name}`, median of {args.runs} cold runs\n")
    print("| run | wall s | CPU s | vs baseline (CPU) |")
    print("| --- | ---: | ---: | ---: |")
    for label, wall, cpu in results:
        print(f"| {label} | {wall:.3f} | {cpu:.3f} | {cpu / base_cpu:.2f} |")


if __name__ == "__main__":
    main()
