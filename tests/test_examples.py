"""Every command in examples/run_examples.sh names a shipped harness and data it can run on unchanged
(no --map): the harness compiles with the example's --set values and every row fits its inputs."""

from __future__ import annotations

import shlex

import pytest
from conftest import REPO

from harnessc.compiler import compile_file
from harnessc.runtime.harness_setup import load_examples

SCRIPT = (REPO / "examples/run_examples.sh").read_text(encoding="utf-8")


def commands() -> list[list[str]]:
    joined = SCRIPT.replace("\\\n", " ")
    return [shlex.split(line.strip())[1:] for line in joined.splitlines() if line.strip().startswith("run ")]


def test_every_shipped_harness_has_an_example() -> None:
    used = {args[0].split("/")[-1].removesuffix(".harness") for args in commands()}
    shipped = {path.stem for path in (REPO / "harnesses").glob("*.harness")}
    assert used == shipped


@pytest.mark.parametrize("args", commands(), ids=lambda args: args[args.index("--out") + 1].split("/")[-1])
def test_example_compiles_and_its_data_fits(args: list[str]) -> None:
    overrides = dict(args[i + 1].split("=", 1) for i, flag in enumerate(args) if flag == "--set")
    harness = compile_file(REPO / args[0], purpose="run", overrides=overrides).require()
    data = REPO / args[args.index("--data") + 1]
    assert len(load_examples(harness, str(data))) >= 64


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.harness")), ids=lambda path: path.stem)
def test_example_harnesses_check_clean_for_training(path) -> None:
    assert compile_file(path, purpose="train").diagnostics == []


def test_ticket_splits_are_what_the_generator_writes() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_tickets", REPO / "examples/data/make_tickets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    splits = module.generate()
    for split, rows in splits.items():
        assert module.path(split).read_text(encoding="utf-8") == module.render(rows)
    texts = [row["text"] for rows in splits.values() for row in rows]
    assert len(set(texts)) == len(texts)  # no ticket in two splits


def test_held_out_tickets_use_only_held_out_issues() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_tickets", REPO / "examples/data/make_tickets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    held_out = {issue for issues in module.ISSUES.values() for issue in issues[-module.HELD_OUT_ISSUES :]}
    shared = {issue for issues in module.ISSUES.values() for issue in issues[: -module.HELD_OUT_ISSUES]}
    assert not held_out & shared and len(held_out) == 6 * module.HELD_OUT_ISSUES


def test_opsd_tickets_has_the_student_view_of_similar_cases() -> None:
    opsd = (REPO / "examples/opsd_tickets.harness").read_text(encoding="utf-8")
    similar = (REPO / "harnesses/similar_cases.harness").read_text(encoding="utf-8")
    shared = (REPO / "harnesses/common/ticket_prompts.harness").read_text(encoding="utf-8")
    for line in shared.splitlines():
        if line.startswith("snippet "):
            assert line in opsd.splitlines()

    def student_view(text: str) -> str:
        return text[text.index("student {") : text.index("}", text.index("student {"))]

    assert student_view(opsd) == student_view(similar)


@pytest.mark.parametrize("name", ["tickets.toml", "quickstart.toml"])
def test_example_configs_are_valid(name: str) -> None:
    from ophsd.config import load_config

    config = load_config(str(REPO / "examples" / name), {}, [])
    assert compile_file(REPO / config.harness, purpose="train").ok
