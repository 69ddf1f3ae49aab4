"""Plain-text tables for the command line: one header line, left-aligned columns, so every
listing (`callgate audit show`, `callgate approvals list`, stats) reads the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

__all__ = ["clip", "print_table"]


def clip(text: str, n: int) -> str:
    """One line of at most `n` characters (whitespace collapsed, an ellipsis when cut)."""
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def print_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO, *, empty: str
) -> None:
    """Left-aligned columns under a header line, two spaces apart; `empty` when no rows."""
    if not rows:
        print(empty, file=out)
        return
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
