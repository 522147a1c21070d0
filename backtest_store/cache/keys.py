"""Redis key parts built from context fields, escaped so that two contexts never share a key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import quote


def encode_part(value: object) -> str:
    if type(value) is bool:
        return "backtest" if value else "live"
    # Percent-encoding ':' and '%' makes the join injective: "A:B"+"C" and "A"+"B:C" differ.
    return quote(str(value), safe="")


def encode_key(fields: Sequence[str], key: Mapping[str, object]) -> str:
    return ":".join(encode_part(key[f]) for f in fields)
