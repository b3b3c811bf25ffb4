"""One harness setup for every consumer: `harnessc run`, `ophsd train` and `ophsd eval` (which runs `harnessc
run`) load the built-ins, compile the harness, read the examples and fill the memory banks here, and build
their programs from the result.

    setup = set_up_harness("plan_solve.harness", purpose="run", data="math.jsonl")
    program = setup.program(mode="inference", seed=0)
    records = StageSynchronousExecutor(program, engine).run(setup.examples)

The setup owns the memory banks. Every program it builds reads the same MemoryBank objects, so what the
trainer adds after a step (`grow_banks`) or a checkpoint restores (`restore_banks`) is what every program
(the harness run, the student's, the held-out evaluation's) sees next.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harnessc import ir
from harnessc.builtins.registry import Registry, load_user_builtins
from harnessc.compiler import compile_file
from harnessc.runtime.data import DataError, coerce_row, load_rows
from harnessc.runtime.expressions import Evaluator
from harnessc.runtime.memory_bank import MemoryBank
from harnessc.runtime.program import Program, bank_entry
from harnessc.types import make_optional

Example = tuple[int, dict[str, Any]]  # (the row's position in the data, its typed inputs)


class UndeclaredBankError(ValueError):
    """Bank files were named for banks the harness does not declare (`names`; `declared` are its own)."""

    def __init__(self, names: Sequence[str], declared: Sequence[str]) -> None:
        self.names, self.declared = list(names), list(declared)
        super().__init__(f"--bank names {', '.join(self.names)}, which the harness does not declare")


@dataclass
class HarnessSetup:
    """A compiled harness, its built-ins, the examples it runs on and its memory banks (their one owner)."""

    registry: Registry
    harness: ir.Harness
    examples: list[Example] = field(default_factory=list)
    banks: dict[str, MemoryBank] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._evaluator = Evaluator(self.registry)  # for bank entries: their field expressions
        self._params = {param.name: param.default.value for param in self.harness.params}

    def program(self, **options: Any) -> Program:
        """A Program of this harness reading this setup's banks; `options` are Program's (mode, seed, ...)."""
        return Program(self.harness, registry=self.registry, banks=self.banks, **options)

    def load_examples(
        self,
        data: str,
        *,
        limit: int | None = None,
        columns: Mapping[str, str] | None = None,
        require_oracles: bool = False,
        errors: list[DataError] | None = None,
    ) -> list[Example]:
        """Another data set's rows as this harness's typed inputs (e.g. the trainer's held-out data)."""
        return load_examples(
            self.harness, data, limit=limit, columns=columns, require_oracles=require_oracles, errors=errors
        )

    def bank_entries(self, bank: ir.Bank, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The entries that data rows (with their oracle inputs: banks hold gold labels) make in `bank`."""
        return [bank_entry(bank, row, self._params, self._evaluator) for row in rows]

    def grow_banks(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Add rows (inputs) to every bank, e.g. a training batch with its gold labels."""
        for bank in self.harness.banks:
            self.banks[bank.name].add(self.bank_entries(bank, rows))

    def bank_state(self) -> dict[str, list[dict[str, Any]]]:
        """Each bank's entries, in insertion order (what a checkpoint keeps; embeddings are recomputed)."""
        return {name: list(bank.entries) for name, bank in self.banks.items()}

    def restore_banks(self, entries: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        """Replace every bank's entries with `entries` (from `bank_state`); a bank it does not name is emptied.
        Each bank is replaced in place in `banks`, so every program of this setup sees the restored one."""
        for name, bank in list(self.banks.items()):
            restored = MemoryBank(name, bank.search_field, bank.label_field, bank.embedder)
            restored.add(entries.get(name, ()))
            self.banks[name] = restored


def set_up_harness(
    harness: str,
    *,
    purpose: str,
    overrides: Mapping[str, str] | None = None,
    builtins: Sequence[str] = (),
    allow_roots: Sequence[str] = (),
    bank_files: Mapping[str, str] | None = None,
    data: str | None = None,
    limit: int | None = None,
    columns: Mapping[str, str] | None = None,
    require_oracles: bool = False,
    data_errors: list[DataError] | None = None,
) -> HarnessSetup:
    """Load the user built-ins, compile `harness` for `purpose` with `overrides` (`--set`), read `data`'s rows
    (see `load_examples`) and fill the banks (see `load_banks`).

    Raises CompileError (the harness has errors), UndeclaredBankError (before any data is read), DataError (a
    bad row, unless `data_errors` collects them; an unreadable bank file), BuiltinsImportError."""
    registry = load_user_builtins(list(builtins))
    compiled = compile_file(
        harness, registry=registry, purpose=purpose, overrides=dict(overrides or {}), allow_roots=list(allow_roots)
    ).require()
    files = dict(bank_files or {})
    declared = [bank.name for bank in compiled.banks]
    undeclared = sorted(set(files) - set(declared))
    if undeclared:
        raise UndeclaredBankError(undeclared, declared)
    setup = HarnessSetup(registry, compiled)
    if data is not None:
        setup.examples = setup.load_examples(
            data, limit=limit, columns=columns, require_oracles=require_oracles, errors=data_errors
        )
    setup.banks = load_banks(setup, files)
    return setup


def load_examples(
    harness: ir.Harness,
    data: str,
    *,
    limit: int | None = None,
    columns: Mapping[str, str] | None = None,
    require_oracles: bool = False,
    errors: list[DataError] | None = None,
) -> list[Example]:
    """The data rows as typed inputs. Oracle inputs may be missing at inference (they are for grading);
    training (`require_oracles`) needs them.

    A bad row raises its DataError, or, when `errors` is given, is appended there and left out."""
    types = {
        item.name: make_optional(item.type) if item.optional or (item.oracle and not require_oracles) else item.type
        for item in harness.inputs
    }
    examples = []
    for row in load_rows(data, limit=limit, columns=columns, errors=errors):
        try:
            examples.append((row.index, coerce_row(row, types, path=data)))
        except DataError as error:
            if errors is None:
                raise
            errors.append(error)
    return examples


def load_banks(setup: HarnessSetup, files: Mapping[str, str]) -> dict[str, MemoryBank]:
    """Each declared bank, filled from `files` (`--bank NAME=PATH`) or the bank's `file` setting: rows of a
    data set, turned into entries by the bank's field expressions."""
    banks = {}
    for bank in setup.harness.banks:
        memory = MemoryBank(bank.name, search_field=bank.search_field, label_field=bank.label_field)
        path = files.get(bank.name) or bank.file
        if path:
            memory.add(setup.bank_entries(bank, [row.values for row in load_rows(path)]))
        banks[bank.name] = memory
    return banks
