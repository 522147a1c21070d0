"""Candle: insert-only, read as one range query, `None` unless every candle is there."""

from __future__ import annotations

import bisect
import operator
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from itertools import repeat
from typing import Any

from .. import validation
from ..errors import InvalidInput
from ..models import CandleItem
from ..models.candle import OHLCV, candle_of
from .base import Adapter, Backend

MAX_BATCH = 100_000
_CANDLE = {"_id": 0, "timestamp": 1, "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1, "extra": 1,
           "keyOrder": 1}
_TIMESTAMP = operator.itemgetter("timestamp")
_INT_ONLY = frozenset({int})
_CANDLE_KEYS = frozenset({OHLCV})


def _shape(stamps: list[int], step: int) -> tuple[int, int, bool, bool, bool]:
    """A write's first and last open times, whether all are on the grid, whether none repeats, and whether they are
    one contiguous run on the grid in order (the usual write: known or not as a whole), in as few passes as the
    usual write allows."""
    first = stamps[0]
    if first % step == 0 and stamps == list(range(first, first + len(stamps) * step, step)):
        return first, stamps[-1], True, True, True
    first, last = min(stamps), max(stamps)
    aligned = not any(map(step.__rmod__, stamps))
    unique = len(set(stamps)) == len(stamps)
    return first, last, aligned, unique, aligned and unique and last - first == (len(stamps) - 1) * step


class KnownRanges:
    """Open times this adapter has seen stored, as merged `[first, last]` ranges on the interval's grid (open times
that are whole multiples of the interval, as exchanges stamp candles; others are never remembered).

    Candles are first-write-wins and never deleted by the store, so a candle seen stored (read back whole, or
    written) stays stored, whoever writes it again: a write skips those without sending them. A range that reads
    back incomplete is forgotten (someone deleted candles), so the framework's refetch is written again. Bounded:
    past `MAX_RANGES` disjoint ranges the oldest knowledge goes.
    """

    MAX_RANGES = 256

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def add(self, first: int, last: int, step: int) -> None:
        starts, ends = self._starts, self._ends
        # Every range that overlaps or touches [first, last] merges into one.
        lo = bisect.bisect_left(ends, first - step)
        hi = bisect.bisect_right(starts, last + step)
        if lo < hi:
            first, last = min(first, starts[lo]), max(last, ends[hi - 1])
        starts[lo:hi] = [first]
        ends[lo:hi] = [last]
        if len(starts) > self.MAX_RANGES:
            del starts[0], ends[0]

    def discard(self, first: int, last: int, step: int) -> None:
        starts, ends = self._starts, self._ends
        lo = bisect.bisect_left(ends, first)
        hi = bisect.bisect_right(starts, last)
        if lo >= hi:
            return
        kept_s, kept_e = [], []
        if starts[lo] < first:
            kept_s.append(starts[lo])
            kept_e.append(first - step)
        if ends[hi - 1] > last:
            kept_s.append(last + step)
            kept_e.append(ends[hi - 1])
        starts[lo:hi] = kept_s
        ends[lo:hi] = kept_e

    def covers(self, first: int, last: int) -> bool:
        """Whether one known range holds [first, last] (the caller checks the timestamps are on the grid)."""
        i = bisect.bisect_right(self._starts, first) - 1
        return i >= 0 and self._ends[i] >= last

    def __bool__(self) -> bool:
        return bool(self._starts)


class CandleAdapter(Adapter):
    model = CandleItem
    # Seconds since the epoch, like time.time: when a candle closes after it, the candle is still forming. An
    # instance may be given another clock (tests do).
    clock: Callable[[], float] = staticmethod(time.time)

    def __init__(self, backend: Backend, symbol: str, interval: str, exchange_name: str) -> None:
        super().__init__(backend, symbol=validation.context_str("symbol", symbol),
                         interval=validation.interval(interval),
                         exchangeName=validation.context_str("exchange_name", exchange_name))
        self._step = validation.INTERVAL_MINUTES[interval] * 60_000
        self._known = KnownRanges()

    async def read_candles_data(self, limit: int, since_timestamp: int,
                                until_timestamp: int) -> list[dict[str, Any]] | None:
        limit = validation.integer("limit", limit, minimum=0)
        since = validation.integer("since_timestamp", since_timestamp, minimum=0)
        validation.integer("until_timestamp", until_timestamp)  # unused, as in the default (API compatibility)
        if limit == 0:
            return []
        step = self._step
        last = validation.integer("the window's last timestamp", since + (limit - 1) * step)
        # One round trip for any window the framework asks for (≤ 1000): the limit lets the server close the
        # cursor with the first batch.
        docs = await self._repo.find_all({**self._context, "timestamp": {"$gte": since, "$lte": last}}, _CANDLE,
                                         min(limit, MAX_BATCH))
        if len(docs) != limit:
            # Never fill gaps and never return neighbours: the framework refetches on None.
            self._known.discard(since, last, step)
            return None
        # The documents are the candles: the projection returns the six fields, in their stored order. In C-level
        # passes: the timestamps are the range in order; a stored int64 reads as bson.Int64 and a double written
        # by the Node driver as a float, so they are made ints; a candle with other fields, or stored in another
        # order (the TypeScript original's documents), is rebuilt by `candle_of`.
        expected = range(since, last + 1, step)
        stamps = list(map(_TIMESTAMP, docs))
        if stamps != list(expected):
            return self._unordered(docs, since, last)
        if not _INT_ONLY.issuperset(map(type, stamps)):
            deque(map(dict.__setitem__, docs, repeat("timestamp"), expected), maxlen=0)
        if not _CANDLE_KEYS.issuperset(map(tuple, docs)):
            docs = [doc if tuple(doc) == OHLCV else candle_of(doc) for doc in docs]
        if since % step == 0:
            self._known.add(since, last, step)
        return docs

    def _unordered(self, docs: list[dict[str, Any]], since: int, last: int) -> list[dict[str, Any]] | None:
        """The server returned the range in another order (no sort is asked for): match by timestamp."""
        found = {int(doc["timestamp"]): doc for doc in docs}
        expected = range(since, last + 1, self._step)
        if any(ts not in found for ts in expected):
            return None
        if since % self._step == 0:
            self._known.add(since, last, self._step)
        return [candle_of(found[ts]) for ts in expected]

    async def write_candles_data(self, candles: list[dict[str, Any]]) -> int:
        """Returns how many candles were new. A candle still forming (close time after now) is skipped, and so are
        candles this adapter has seen stored (first write wins: they are not sent)."""
        if type(candles) not in (list, tuple):
            raise InvalidInput(f"candles must be a list, got {type(candles).__name__}")
        rows, stamps = validation.candles(candles)
        if not rows:
            return 0
        step, known = self._step, self._known
        now_ms = int(self.clock() * 1000)
        interval = self._context["interval"]
        first, last, aligned, unique, run = _shape(stamps, step)
        if validation.forming(last, interval, now_ms):
            kept = [i for i, ts in enumerate(stamps) if not validation.forming(ts, interval, now_ms)]
            rows, stamps = [rows[i] for i in kept], [stamps[i] for i in kept]
            if not rows:
                return 0
            first, last, aligned, unique, run = _shape(stamps, step)
        if run and known.covers(first, last):
            return 0
        if unique and not known:
            new = dict(zip(stamps, rows))
        else:
            new = {}
            for ts, row in zip(stamps, rows):
                if ts not in new and not (ts % step == 0 and known.covers(ts, ts)):
                    new[ts] = row
        if len(new) > 1 and not known:
            # A new adapter knows nothing: which are stored already, timestamps only, before sending any (a write of
            # 1,000 candles that all exist then costs one small read). Once it knows some, the framework's writes
            # are its refetches after a miss: new candles, inserted at once.
            span = (last - first) // step + 1
            within = {"$gte": first, "$lte": last} if aligned and span <= 2 * len(new) else {"$in": list(new)}
            stored = await self._repo.stored_values({**self._context, "timestamp": within}, "timestamp")
            deque(map(new.pop, map(int, map(_TIMESTAMP, stored)), repeat(None)), maxlen=0)
        inserted = 0
        if new:
            now = datetime.now(timezone.utc)
            context = self._context
            inserted = await self._repo.insert_new(
                [{**context, **row, "createDate": now, "updatedDate": now} for row in new.values()])
        if run:
            known.add(first, last, step)
        else:
            self._remember(sorted({ts for ts in stamps if ts % step == 0}))
        return inserted

    def _remember(self, stamps: list[int]) -> None:
        """Every candle of a finished write is stored now: its contiguous runs become known ranges."""
        if not stamps:
            return
        step, known = self._step, self._known
        start = prev = stamps[0]
        for ts in stamps[1:]:
            if ts != prev + step:
                known.add(start, prev, step)
                start = ts
            prev = ts
        known.add(start, prev, step)
