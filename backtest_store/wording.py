"""Counts in words, the same in every report and command: `1 file`, `2 files`, `3 indexes`."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """`many` for irregular words: `plural(2, "index", "indexes")`."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"
