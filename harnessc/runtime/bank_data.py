"""Filling a memory bank from a data file: the rows become entries by the same rules as the data's rows.

A bank's file (`--bank NAME=PATH`, or the bank's `file`) holds rows like the data set's: the bank's field
expressions read the harness's inputs from them. So each row's inputs are converted to their declared
types first, exactly as a data row's are (harnessc/runtime/values.py: a number read as text keeps its
written form, NaN is a missing value), and a row that cannot make an entry (an input missing or of the
wrong type, a field expression that fails, a field left absent) is a DataError naming the file, the row
and the field, never a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harnessc import ir
from harnessc.dependencies import referenced_names
from harnessc.runtime.data import DataError, coerce_row, load_rows
from harnessc.runtime.expressions import EvaluationError
from harnessc.types import Optional_, make_optional


def bank_entries(
    harness: ir.Harness,
    bank: ir.Bank,
    path: str,
    evaluate_entry: Callable[[ir.Bank, Mapping[str, Any]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """The entries the rows of the data file at `path` make for `bank` (`evaluate_entry(bank, inputs)`
    computes one from converted inputs). Raises the DataError of the first row that makes none."""
    reads = set(referenced_names([field.value for field in bank.fields], kinds=("input",)))
    # The inputs the bank's fields read, as declared; oracle inputs are required (a bank holds gold labels).
    types = {
        item.name: make_optional(item.type) if item.optional else item.type
        for item in harness.inputs
        if item.name in reads
    }
    entries = []
    for row in load_rows(path):
        inputs = coerce_row(row, types, path=path)
        try:
            entry = evaluate_entry(bank, inputs)
        except EvaluationError as error:
            raise DataError(path, row.index, None, f"makes no entry of bank `{bank.name}`: {error}") from None
        for field in bank.fields:
            if entry.get(field.name) is None and not isinstance(field.type, Optional_):
                message = f"is absent in this row, so the entry of bank `{bank.name}` has no `{field.name}`"
                raise DataError(path, row.index, _source_field(field, reads), message)
        entries.append(entry)
    return entries


def _source_field(field: ir.BankField, inputs: set[str]) -> str:
    """The input a bank field is computed from, as the error names it (the field's own name otherwise)."""
    read = [name for name in referenced_names([field.value], kinds=("input",)) if name in inputs]
    return read[0] if len(read) == 1 else field.name
