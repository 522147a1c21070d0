"""Helpers shared by the tests: builders and comparisons that more than one test file needs."""

from __future__ import annotations

import math
from typing import Any


def same(a: Any, b: Any, *, numbers: bool = False) -> bool:
    """Equality where NaN equals NaN (a NaN written must read back as NaN), a bool never equals a number, key
    order counts, and an int never equals a float unless `numbers` (JavaScript's one number type) says so."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if (type(a) is bool) != (type(b) is bool):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k], numbers=numbers) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, numbers=numbers) for x, y in zip(a, b))
    if a != b:
        return False
    kinds = {type(a), type(b)}
    return len(kinds) == 1 or all(issubclass(k, int) for k in kinds) or (numbers and kinds <= {int, float})
