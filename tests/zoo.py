"""What the tests share: server URLs, unique names, fixed times, builders and comparisons.

Fixtures live in `conftest.py`; everything a test file imports by name lives here, once.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from backtest_store import NotReady, Store
from backtest_store.embedded import EmbeddedServer, free_port

# A fixed, long-closed instant: candles there are final whatever the wall clock says.
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
T0_MS = 1767225600000
MINUTE = 60_000

OpenStore = Callable[..., Awaitable[Store]]


@dataclass(frozen=True)
class ServerUrls:
    mongo: str
    redis: str
    # The suite's own embedded MongoDB, deleted with its files at the end of the session: nothing to drop there.
    disposable_mongo: bool = False

    def mongo_db(self, name: str) -> str:
        parts = urlsplit(self.mongo)
        return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def unique(label: str) -> str:
    """A database name, cache prefix or key no other test (or run) uses."""
    return f"{label}_{uuid.uuid4().hex[:10]}"


def candles(start: int, count: int, step: int = MINUTE, price: float = 100.0) -> list[dict[str, Any]]:
    """`count` consecutive OHLCV candles from `start` (epoch ms), `step` apart."""
    return [{"timestamp": start + i * step, "open": price + i, "high": price + i + 1, "low": price + i - 1,
             "close": price + i + 0.5, "volume": 10.0 + i} for i in range(count)]


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


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses every connection while the block runs: bound, so no other process can take it
    and start listening there, but never listening itself."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        yield port


async def start_server(make: Callable[[int], EmbeddedServer], attempts: int = 5) -> EmbeddedServer:
    """`make(port)` started on a port that was free a moment ago. Another process may take that port in between,
    and the server then exits at start-up: it is made again on another port, never assumed lucky."""
    for attempt in range(attempts):
        server = make(free_port())
        try:
            await server.start()
            return server
        except NotReady:
            server.stop()
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


async def frozen(pid: int) -> None:
    """SIGSTOP `pid` and wait until the kernel shows it stopped: the signal is delivered asynchronously, and a
    server still running for a moment on the other core answers a request sent right after `kill` (a write that
    was meant to find a frozen server then succeeded in 2 ms). The wait is for the state, never a fixed time."""
    os.kill(pid, signal.SIGSTOP)
    while True:
        with open(f"/proc/{pid}/stat") as stat:
            # The state follows the command name, which is in parentheses and may hold spaces.
            if stat.read().rpartition(")")[2].split()[0] in ("T", "t"):
                return
        await asyncio.sleep(0.001)
