"""One Ctrl-C stops every command, at any moment.

`asyncio.run` turns the first Ctrl-C into a cancellation of the command's task. On Python 3.11 `asyncio.wait_for`
loses that cancellation when it arrives just as the awaited operation completes (CPython gh-86296, fixed in 3.12):
the command then runs on as if nothing happened. redis-py wraps every command it sends in `wait_for` when a socket
timeout is set (ours always is), and PyMongo every socket write once `timeoutMS` applies, so a run of the demo lost
7 of 7 Ctrl-Cs sent mid-simulation.

The console command therefore replaces `asyncio.wait_for`, on Python < 3.12 only, with 3.12's implementation: the
operation is awaited in the caller's own task under `asyncio.timeout`, which either finishes or raises, and never
drops a cancellation. Only the `backtest-store` process is affected; the library never patches the standard library.
An application of its own on Python 3.11 that needs a reliable Ctrl-C can run inside `patched_wait_for()` itself.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

_T = TypeVar("_T")


async def wait_for(fut: Awaitable[_T], timeout: float | None) -> _T:
    """`asyncio.wait_for` as Python 3.12 implements it."""
    if timeout is not None and timeout <= 0:
        task = asyncio.ensure_future(fut)
        if task.done():
            return task.result()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        try:
            return task.result()
        except asyncio.CancelledError as exc:
            raise TimeoutError() from exc
    async with asyncio.timeout(timeout):
        return await fut


@contextmanager
def patched_wait_for() -> Iterator[None]:
    """`wait_for` as `asyncio.wait_for` while the block runs, on Python < 3.12; the original is put back after."""
    if sys.version_info >= (3, 12):
        yield
        return
    original, patched = asyncio.wait_for, cast(Any, wait_for)
    asyncio.wait_for = asyncio.tasks.wait_for = patched
    try:
        yield
    finally:
        asyncio.wait_for = asyncio.tasks.wait_for = original
