"""How `harnessc check` scales: parse + lower + check of generated harnesses of 100 to 10,000 stages.

    python benchmarks/bench_check.py                    # 100, 1,000 and 10,000 stages, best of 5
    python benchmarks/bench_check.py --sizes 100 1000 --repeat 3
    python benchmarks/bench_check.py --profile 10000    # cProfile of one compilation, top 25 functions

The generated harnesses are valid (no diagnostic at all, `--for train`) and look like real ones scaled up:
LLM stages whose prompts read earlier stages through templates (placeholders, `{if}`, `{for}`), `let`
stages calling built-ins, guarded stages with and without an `else` prompt, bool stages used as guards,
`n`-sampled stages with a comprehension over their samples, and a critique/revise loop every 50 stages.
Each stage reads the stage before it and up to two random earlier ones (fixed seed), so every stage is used.

Times are the best of `--repeat` runs. "wall s" and "CPU s" are `compile_source` end to end, in wall-clock
and in CPU time (the front end is single-threaded: on an idle machine the two agree; on a shared one CPU
time is the steadier measure). The phases, in CPU seconds: parse (text → syntax tree, templates
included), lower (names, types → IR) and checks (the whole-graph checks of harnessc/checks/). The last
column divides the CPU time per stage by that of the smallest size: it stays near 1 when the front end
grows linearly.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import platform
import pstats
import random
import sys
import time
from collections.abc import Callable

from harnessc.builtins.registry import default_registry
from harnessc.checks import CheckContext, run_checks
from harnessc.compiler import compile_source
from harnessc.lowering import lower_module
from harnessc.parser import parse_module
from harnessc.source import SourceFile

PATH = "bench.harness"


class _Generator:
    """Builds the harness text stage by stage, remembering which stages hold text and which bool."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lines: list[str] = []
        self.texts: list[str] = []  # stages whose value is text
        self.flags: list[str] = []  # stages whose value is bool
        self.last_llm = ""
        self.count = 0  # IR stages generated (a loop and its inner stages all count)

    def name(self) -> str:
        self.count += 1
        return f"s{self.count}"

    def earlier(self, limit: int = 2) -> list[str]:
        """The previous text stage and up to `limit` random earlier ones (distinct)."""
        chosen = [self.texts[-1]]
        for _ in range(self.rng.randint(0, limit)):
            candidate = self.rng.choice(self.texts)
            if candidate not in chosen:
                chosen.append(candidate)
        return chosen

    def llm(self) -> None:
        name, reads = self.name(), self.earlier()
        context = "\n".join(f"    Notes {index}: {{{read}}}" for index, read in enumerate(reads))
        flag = f"\n    {{if {self.flags[-1]}}}Double-check the notes.{{end}}" if self.flags else ""
        self.lines += [
            f"llm {name} {{",
            "  system PERSONA",
            '  user """',
            "    Problem: {question}",
            context + flag,
            "    Continue the work.",
            '  """',
            f"  temperature {self.rng.choice(['0.0', '0.6', '1.0'])}",
            "  max_tokens tokens",
            "}",
        ]
        self.texts.append(name)
        self.last_llm = name

    def guarded(self) -> None:
        name, reads = self.name(), self.earlier(1)
        guard = self.flags[-1] if self.flags else f"nonempty({reads[0]})"
        self.lines += [
            f"llm {name} when {guard} {{",
            f'  user "Check this: {{{reads[0]}}}\\nAgainst the problem: {{question}}"',
            "  max_tokens tokens",
            "} else {",
            '  user "Solve: {question}" max_tokens tokens',
            "}",
        ]
        self.texts.append(name)
        self.last_llm = name

    def optional(self) -> None:
        """A guarded stage without `else` (its value may be absent) and a `let` that falls back."""
        name, fallback = self.name(), self.name()
        read = self.earlier(0)[0]
        self.lines += [
            f'llm {name} when contains({read}, "?") {{',
            f'  user "Answer the question in: {{{read}}}"',
            "  max_tokens tokens",
            "}",
            f'let {fallback} = join([strip_think({read}), "{{if {name}}}{{{name}}}{{end}}"], "\\n")',
        ]
        self.texts.append(fallback)

    def let(self) -> None:
        name, reads = self.name(), self.earlier()
        value = self.rng.choice(
            [
                f"strip_think({reads[0]})",
                f"extract_boxed({reads[0]})",
                f'join([{", ".join(reads)}], "\\n---\\n")',
                f"lower(strip({reads[0]}))",
                f'join(split({reads[0]}, ";"), ", ")',
            ]
        )
        self.lines.append(f"let {name} = {value}")
        self.texts.append(name)

    def flag(self) -> None:
        """A bool `let` and a stage guarded by it (so that every flag is read)."""
        name, reads = self.name(), self.earlier(1)
        self.lines.append(f'let {name} = nonempty({reads[0]}) and not contains({reads[-1]}, "unsure")')
        self.flags.append(name)
        self.guarded()

    def sampled(self) -> None:
        name, voted = self.name(), self.name()
        read = self.earlier(0)[0]
        self.lines += [
            f"llm {name} {{",
            f'  user "Try again: {{{read}}}"',
            "  n 4",
            "  temperature 0.8",
            "  max_tokens tokens",
            "}",
            f"let {voted} = majority([extract_boxed(sample) for sample in {name}])",
        ]
        self.texts.append(voted)

    def loop(self) -> None:
        name, critique, revise = self.name(), self.name(), self.name()
        read = self.earlier(0)[0]
        self.lines += [
            f"loop {name} from {read} max rounds {{",
            f"  llm {critique} {{",
            f'    user "Critique:\\n{{{name}}}\\nEnd with APPROVED if it is right."',
            "    max_tokens tokens",
            "  }",
            f'  until contains({critique}, "APPROVED")',
            f"  llm {revise} {{",
            f'    user "Revise:\\n{{{name}}}\\nCritique:\\n{{{critique}}}"',
            "    max_tokens tokens",
            "  }",
            f"  next {revise}",
            "}",
        ]
        self.texts.append(name)


def generate(stages: int, seed: int = 0) -> str:
    """A valid harness with about `stages` stages (exactly `stages` when the mix allows; see `count`)."""
    gen = _Generator(seed)
    gen.lines += [
        f'harness bench_{stages} "generated by benchmarks/bench_check.py"',
        "",
        "input question: text",
        "input answer: text oracle",
        "param tokens: int = 1024",
        "param rounds: int = 2",
        'snippet PERSONA = "You are a careful assistant working on: {question}"',
        "",
        "llm s0 {",
        "  system PERSONA",
        '  user "Problem: {question}"',
        "  max_tokens tokens",
        "}",
    ]
    gen.texts.append("s0")
    gen.last_llm = "s0"
    makers: list[tuple[Callable[[], None], int, int]] = [  # (maker, weight, stages it adds)
        (gen.llm, 30, 1),
        (gen.guarded, 12, 1),
        (gen.let, 30, 1),
        (gen.flag, 8, 2),
        (gen.optional, 6, 2),
        (gen.sampled, 4, 2),
    ]
    while gen.count + 1 < stages:
        left = stages - 1 - gen.count
        if gen.count % 50 == 49 and left >= 3:
            gen.loop()
            continue
        fitting = [(maker, weight) for maker, weight, adds in makers if adds <= left]
        maker = gen.rng.choices([m for m, _ in fitting], weights=[w for _, w in fitting])[0]
        maker()
    gen.lines += [
        "",
        'student {\n  user "{question}"\n  max_tokens tokens\n}',
        f"teacher = {gen.last_llm} else student",
        f"output = extract_boxed({gen.texts[-1]})",
        "student_output = extract_boxed(student)",
        "grade = math_equal(output, answer)",
    ]
    return "\n".join(gen.lines) + "\n"


# ---- timing -----------------------------------------------------------------------------------------------


def best_of(repeat: int, function: Callable[[], object]) -> tuple[float, float, object]:
    """(best wall seconds, best CPU seconds, the last result) over `repeat` calls."""
    wall, cpu, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        result = function()
        cpu = min(cpu, time.process_time() - start_cpu)
        wall = min(wall, time.perf_counter() - start_wall)
    return wall, cpu, result


def measure(text: str, repeat: int) -> dict[str, float]:
    registry = default_registry()
    source = SourceFile(PATH, text)
    sources = {PATH: source}
    # The phases run as compile_source runs them: with Python's cyclic garbage collector paused.
    collecting = gc.isenabled()
    gc.disable()
    try:
        _, parse_s, parsed = best_of(repeat, lambda: parse_module(source))
        module, errors = parsed
        assert module is not None and not errors, errors
        _, lower_s, lowered = best_of(repeat, lambda: lower_module(module, {}, sources, registry))
        harness, problems = lowered
        _, checks_s, found = best_of(repeat, lambda: run_checks(harness, CheckContext(purpose="train")))
    finally:
        if collecting:
            gc.enable()
    wall_s, total_s, compilation = best_of(repeat, lambda: compile_source(text, PATH, purpose="train"))
    diagnostics = [*problems, *found, *compilation.diagnostics]
    if diagnostics:
        shown = [(item.code, str(item.span)) for item in diagnostics][:5]
        raise SystemExit(f"the generated harness is not clean: {shown}")
    return {
        "stages": len(harness.stages),
        "lines": text.count("\n"),
        "parse": parse_s,
        "lower": lower_s,
        "checks": checks_s,
        "total": total_s,
        "wall": wall_s,
    }


def table(rows: list[dict[str, float]]) -> str:
    header = ("stages", "lines", "wall s", "CPU s", "parse", "lower", "checks", "µs/stage", "vs smallest")
    base = rows[0]["total"] / rows[0]["stages"]
    lines = [" | ".join(header), " | ".join("---:" for _ in header)]
    for row in rows:
        per_stage = row["total"] / row["stages"]
        lines.append(
            " | ".join(
                [
                    f"{row['stages']:,}",
                    f"{row['lines']:,}",
                    f"{row['wall']:.3f}",
                    f"{row['total']:.3f}",
                    f"{row['parse']:.3f}",
                    f"{row['lower']:.3f}",
                    f"{row['checks']:.3f}",
                    f"{per_stage * 1e6:.0f}",
                    f"{per_stage / base:.2f}",
                ]
            )
        )
    return "\n".join("| " + line + " |" for line in lines)


def profile(stages: int) -> None:
    text = generate(stages)
    compile_source(text, PATH)  # warm the parser cache and imports
    profiler = cProfile.Profile()
    profiler.enable()
    compile_source(text, PATH, purpose="train")
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=5, help="runs per phase; the best is reported")
    parser.add_argument("--profile", type=int, metavar="STAGES", help="profile one compilation instead")
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.profile)
        return 0
    compile_source(generate(10), PATH)  # build the Lark parser once, outside the timings
    rows = [measure(generate(size), args.repeat) for size in args.sizes]
    print(
        f"Python {platform.python_version()} on {platform.machine()}, best of {args.repeat}; "
        "parse, lower, checks and µs/stage are CPU seconds (time.process_time)"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
