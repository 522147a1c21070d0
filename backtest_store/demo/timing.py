"""Latency measured around each adapter call (the demo's summary), and the stand-in for adapters a mode does not
persist."""

from __future__ import annotations

import inspect
import math
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from typing import Any


class LatencyRecorder:
    """Wall time of each adapter call, by `<adapter>.<method>`."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = defaultdict(list)

    def wrap(self, name: str, adapter: Any) -> Any:
        return Timed(name, adapter, self)

    def summary(self) -> dict[str, dict[str, float | int]]:
        out = {}
        for name in sorted(self.samples):
            values = sorted(self.samples[name])
            out[name] = {
                "calls": len(values),
                "p50_ms": round(percentile(values, 0.50) * 1000, 3),
                "p99_ms": round(percentile(values, 0.99) * 1000, 3),
                "max_ms": round(values[-1] * 1000, 3),
                "total_ms": round(sum(values) * 1000, 1),
            }
        return out


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest rank."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


class InMemory:
    """An adapter the framework does not persist in this mode: every call is accepted and nothing is stored."""

    def __getattr__(self, attr: str) -> Any:
        async def ignored(*args: Any, **kwargs: Any) -> None:
            return None
        return ignored


class Timed:
    """A proxy timing every coroutine method, and every `list_*` iteration from first to last item."""

    def __init__(self, name: str, adapter: Any, recorder: LatencyRecorder) -> None:
        self._name, self._adapter, self._recorder = name, adapter, recorder

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self._adapter, attr)
        key = f"{self._name}.{attr}"
        samples = self._recorder.samples[key]
        if inspect.iscoroutinefunction(target):
            async def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await target(*args, **kwargs)
                finally:
                    samples.append(time.perf_counter() - started)
            return timed
        if attr.startswith("list_"):
            async def listed(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                started = time.perf_counter()
                try:
                    async for item in target(*args, **kwargs):
                        yield item
                finally:
                    samples.append(time.perf_counter() - started)
            return listed
        return target
