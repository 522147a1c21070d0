"""Import a backtest-kit `./dump` into the store: streaming, batched, idempotent.

Memory stays bounded whatever the dump holds: directories are walked with `os.scandir` (never listed whole),
files are read one batch at a time in a worker thread while the previous batch is written, and each batch is
one bulk write. A file that cannot be imported (corrupt JSON, a `.tmp-` leftover, a literal `null` where the
framework never writes one, an ambiguous directory name...) is reported with its path and skipped; it never
stops the import.

A literal `null` in a Signal, Schedule or Strategy file is the framework's cleared record, and in a Risk file
reads as no positions: it is stored as a null payload, exactly what the adapter stores for `write_...(None)`.

Directory names joined with `_` (`<symbol>_<strategy>_<exchange>`, `<riskName>_<exchange>`...) that split more
than one way and whose file does not say which are set aside in a first pass (only the directory is
remembered), while every file teaches the names it states; a second pass over those directories resolves them
with everything the dump said, then the database (`layout.Hints`).

Counts, per adapter:
- imported: documents inserted or updated;
- unchanged: the stored document already held exactly the file's value (payload, `removed` and `when` where the
  file gives one), so nothing was written. Candles and log entries are first-write-wins: an existing key is
  unchanged by definition;
- skipped: files that could not be imported.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pymongo.errors import BulkWriteError

from .. import validation
from ..errors import DumpError, InvalidInput, StorageError
from ..repositories import BulkCounts
from . import reading
from .hints import Defer, Hints
from .jsonfile import json_equal, to_json
from .layout import DATA_ROOTS, LAYOUTS, Layout
from .names import MAX_HINTS, Record, Skip
from .reading import DumpFile
from .reports import ImportReport

if TYPE_CHECKING:
    from ..repositories import Repository
    from ..store import Store

BATCH_SIZE = 1000
# A file larger than this cannot become a MongoDB document: it is refused before it is read.
IN_CHUNK = 100
RANGE_FACTOR = 10

Progress = Callable[[str, int], None]



def _unstorable(record: Record) -> str | None:
    """Why MongoDB could not store this record's document (over 16 MiB with its context), or None."""
    try:
        validation.document(record.key, record.fields)
    except InvalidInput as exc:
        return str(exc)
    return None


class Importer:
    def __init__(self, store: "Store", path: str | os.PathLike[str], *, batch_size: int = BATCH_SIZE,
                 on_progress: Progress | None = None) -> None:
        self.store = store
        self.root = os.path.abspath(os.fspath(path))
        self.batch_size = max(1, batch_size)
        self.on_progress = on_progress
        self.report = ImportReport(self.root)
        self.hints = Hints(store)
        # Per adapter, the directories (below its root) holding files whose name must be looked at again.
        self.deferred: dict[str, dict[tuple[str, ...], None]] = {}
        self._deferred_count = 0

    async def run(self) -> ImportReport:
        if not os.path.isdir(self.root):
            raise DumpError(f"{self.root} is not a directory")
        if not any(os.path.isdir(os.path.join(self.root, d)) for d in DATA_ROOTS) \
                and os.path.isdir(os.path.join(self.root, "dump")):
            raise DumpError(f"{self.root} holds a dump/ directory: pass {os.path.join(self.root, 'dump')}")
        started = time.monotonic()
        self.report.ignored = reading.ignored(self.root)
        for layout in LAYOUTS:
            await self._layout(layout)
        final = self.hints.finally_()
        for layout in LAYOUTS:
            for under in self.deferred.get(layout.name, ()):
                await self._layout(layout, under, final)
        self.report.seconds = time.monotonic() - started
        return self.report

    async def _layout(self, layout: Layout, under: tuple[str, ...] = (), final: Hints | None = None) -> None:
        """Import the files of one adapter; with `final`, only those of a deferred directory that were deferred."""
        files = reading.files(self.root, layout, under)
        done = 0
        pending: asyncio.Task[None] | None = None
        try:
            while True:
                # Read the next batch in a thread while the previous one is being written.
                batch = await asyncio.to_thread(reading.take, files, self.batch_size)
                if not batch:
                    break
                records = await (self._parse(layout, batch) if final is None else self._reparse(layout, batch, final))
                if pending is not None:
                    await pending
                pending = asyncio.ensure_future(self._write(layout, records))
                if final is None:
                    done += len(batch)
                    self.report.files += len(batch)
                    if self.on_progress:
                        self.on_progress(layout.name, done)
            if pending is not None:
                await pending
                pending = None
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
            files.close()

    async def _parse(self, layout: Layout, batch: list[DumpFile]) -> list[Record]:
        records = []
        for f in batch:
            if f.error is not None:
                self.report.skip(layout.name, f.rel, f.error)
                continue
            try:
                record = await layout.parse(f.parts, f.value, self.hints)
            except Skip as exc:
                self.report.skip(layout.name, f.rel, str(exc))
                continue
            except Defer:
                self._defer(layout, f)
                continue
            if (refused := _unstorable(record)) is not None:
                self.report.skip(layout.name, f.rel, refused)
                continue
            # Every key the first pass settles is a fact the dump states: it names its context.
            self.hints.learn(record.key)
            records.append(dataclasses.replace(record, source=f.rel))
        return records

    def _defer(self, layout: Layout, f: DumpFile) -> None:
        directories = self.deferred.setdefault(layout.name, {})
        under = f.parts[:-1]
        if under not in directories:
            if self._deferred_count >= MAX_HINTS:
                self.report.skip(layout.name, f.rel, "ambiguous directory name: too many of them to look at again")
                return
            directories[under] = None
            self._deferred_count += 1

    async def _reparse(self, layout: Layout, batch: list[DumpFile], final: Hints) -> list[Record]:
        """The second pass: files the first pass imported or reported (their outcome does not depend on what the
        dump says elsewhere) are recognised by parsing them the first way again, and left alone."""
        records = []
        for f in batch:
            if f.error is not None:
                continue
            try:
                await layout.parse(f.parts, f.value, self.hints)
                continue
            except Skip:
                continue
            except Defer:
                pass
            try:
                record = await layout.parse(f.parts, f.value, final)
            except Skip as exc:
                self.report.skip(layout.name, f.rel, str(exc))
                continue
            if (refused := _unstorable(record)) is not None:
                self.report.skip(layout.name, f.rel, refused)
                continue
            records.append(dataclasses.replace(record, source=f.rel))
        return records

    async def _write(self, layout: Layout, records: list[Record]) -> None:
        counts = self.report.adapters[layout.name]
        repo = self.store.repository(layout.model)
        if not records:
            return
        if layout.insert_only:
            # Looking first costs one query per batch and spares the server an upsert per existing key.
            existing = await self._stored(layout, records, {f: 1 for f in layout.model.context_key()})
            missing = [r for r in records if self._id(layout, r.key) not in existing]
            inserted = (await self._bulk(layout, missing, repo.insert_missing)).inserted if missing else 0
            counts.inserted += inserted
            counts.imported += inserted
            counts.unchanged += len(records) - inserted
            return
        fields = {f: 1 for f in layout.model.context_key()} | {f: 1 for r in records for f in r.fields}
        stored = await self._stored(layout, records, fields)
        changed = []
        for record in records:
            doc = stored.get(self._id(layout, record.key))
            if doc is not None and self._same(doc, record.fields):
                counts.unchanged += 1
            else:
                changed.append(record)
        result = await self._bulk(layout, changed, repo.upsert_many)
        counts.inserted += result.inserted
        counts.updated += result.matched
        counts.imported += result.inserted + result.matched

    async def _bulk(self, layout: Layout, records: list[Record],
                    write: Callable[[list[tuple[dict[str, Any], dict[str, Any]]]], Awaitable[BulkCounts]]) -> BulkCounts:
        """One bulk write; a batch the server refuses is halved until only the refused documents are left out
        (and reported with their files). A server that fails as a whole still stops the import."""
        if not records:
            return BulkCounts()
        try:
            return await write([(r.key, r.fields) for r in records])
        except StorageError as exc:
            if not isinstance(exc.__cause__, BulkWriteError):
                raise
            if len(records) == 1:
                self.report.skip(layout.name, records[0].source, f"refused by the server: {exc}")
                return BulkCounts()
        middle = len(records) // 2
        return await self._bulk(layout, records[:middle], write) + await self._bulk(layout, records[middle:], write)

    @staticmethod
    def _id(layout: Layout, key: dict[str, Any]) -> tuple[Any, ...]:
        # Tagged, so that a bool context field never matches an int (bson.Int64 is an int like any other).
        return tuple(("bool", v) if type(v) is bool else ("", int(v) if isinstance(v, int) else v)
                     for v in (key.get(f) for f in layout.model.context_key()))

    async def _stored(self, layout: Layout, records: list[Record],
                      projection: dict[str, int]) -> dict[tuple[Any, ...], dict[str, Any]]:
        """The stored documents of these keys, by shared key prefix (index-friendly)."""
        *prefix, last = layout.model.context_key()
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for r in records:
            groups.setdefault(self._id(layout, {f: r.key[f] for f in prefix}), []).append(r.key[last])
        found = {}
        repo = self.store.repository(layout.model)
        for group, values in groups.items():
            match = {f: v for f, (_, v) in zip(prefix, group)}
            async for doc in _matching(repo, match, last, values, {**projection, "_id": 0}):
                found[self._id(layout, doc)] = doc
        return found

    @staticmethod
    def _same(doc: dict[str, Any], fields: dict[str, Any]) -> bool:
        for name, value in fields.items():
            if name not in doc:
                return False
            try:
                stored = to_json(doc[name])
            except TypeError:
                return False
            if not json_equal(stored, value):
                return False
        return True


async def _matching(repo: "Repository", match: dict[str, Any], field: str, values: list[Any],
                    projection: dict[str, int]) -> AsyncIterator[dict[str, Any]]:
    """The documents of `match` whose `field` is one of `values`."""
    if all(type(v) is int for v in values):
        # Candle timestamps: one range query (files come in directory order, so a batch spans a wide range),
        # unless the range holds many more documents than were asked for.
        limit = RANGE_FACTOR * len(values) + 1
        docs = [doc async for doc in repo.iterate({**match, field: {"$gte": min(values), "$lte": max(values)}},
                                                  projection, limit=limit)]
        if len(docs) < limit:
            for doc in docs:
                yield doc
            return
    # Short `$in` lists: their cost grows faster than their length on some servers (SecantusDB takes 70 times as
    # long for 1,000 values as for 100).
    for i in range(0, len(values), IN_CHUNK):
        async for doc in repo.iterate({**match, field: {"$in": values[i:i + IN_CHUNK]}}, projection):
            yield doc


async def import_dump(store: "Store", path: str | os.PathLike[str], *, batch_size: int = BATCH_SIZE,
                      on_progress: Progress | None = None) -> ImportReport:
    """Upsert everything a backtest-kit `dump/` directory holds; see the module docstring for the counts."""
    return await Importer(store, path, batch_size=batch_size, on_progress=on_progress).run()
