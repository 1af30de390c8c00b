"""The one Markdown table writer of the package (results tables, budget sizes, benchmarks)."""

from __future__ import annotations

from collections.abc import Iterable


def table(columns: Iterable[str], rows: Iterable[Iterable]) -> str:
    """A pipe table: a header line, a rule, one line per row (cells through ``str``)."""
    columns = list(columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)
