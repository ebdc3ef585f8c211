"""The guarded status move every transition table uses (allocations, support requests): a row's
``status`` changes only along its table, else the table's own error is raised."""

from __future__ import annotations

from typing import Any, Callable, Mapping


def allowed(table: Mapping[str | None, frozenset[str]], before: str | None, to: str) -> bool:
    """True when ``table`` allows ``before`` → ``to`` (``before`` None: a new row)."""
    return to in table.get(before, frozenset())


def move(row: Any, to: str, table: Mapping[str | None, frozenset[str]],
         error: Callable[[str | None, str], Exception]) -> str:
    """Set ``row.status`` to ``to`` when ``table`` allows it; returns the status before.
    Raises ``error(before, to)`` otherwise."""
    before = getattr(row, "status", None)
    if not allowed(table, before, to):
        raise error(before, to)
    row.status = to
    return before
