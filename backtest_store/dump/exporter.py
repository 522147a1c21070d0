"""Export the store as a backtest-kit `./dump` that the JavaScript framework reads back (spec §2.1, §4.2, §4.3).

Every collection is streamed from a cursor; files are written in a worker thread, one chunk at a time, while the
next chunk is read. Each file is compact UTF-8 JSON without NaN/Infinity tokens, written atomically through a
`.tmp-<12 hex>-<name>` sibling, fsync and rename. A document whose context cannot be a file name (a `/`, NUL,
`.`/`..`, too long) is refused and reported; nothing is ever written outside the target directory.
"""

from __future__ import annotations

import asyncio
import errno
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .importer import MAX_LISTED, DumpError, Progress
from .jsonfile import dumps, to_json, write_atomic
from .layout import LAYOUTS, Layout, Skip

if TYPE_CHECKING:
    from ..store import Store

CHUNK = 500
MAX_DIRS = 10_000
# Failures that concern one file name only; anything else (disk full, read-only, permissions) stops the export.
_NAME_ERRORS = {errno.ENAMETOOLONG, errno.EINVAL, errno.EILSEQ}


@dataclass
class AdapterExport:
    written: int = 0
    skipped: int = 0


@dataclass
class ExportReport:
    path: str
    adapters: dict[str, AdapterExport] = field(default_factory=lambda: {l.name: AdapterExport() for l in LAYOUTS})
    skipped_documents: list[tuple[str, str]] = field(default_factory=list)
    skipped: int = 0
    seconds: float = 0.0

    @property
    def written(self) -> int:
        return sum(a.written for a in self.adapters.values())

    def skip(self, adapter: str, what: str, reason: str) -> None:
        self.adapters[adapter].skipped += 1
        self.skipped += 1
        if len(self.skipped_documents) < MAX_LISTED:
            self.skipped_documents.append((what, reason))

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "seconds": round(self.seconds, 3), "written": self.written, "skipped": self.skipped,
            "adapters": {name: vars(a) for name, a in self.adapters.items()},
            "skipped_documents": [{"document": d, "reason": r} for d, r in self.skipped_documents],
            "skipped_documents_truncated": self.skipped > len(self.skipped_documents),
        }


def _describe(layout: Layout, doc: dict[str, Any]) -> str:
    key = ", ".join(f"{f}={doc.get(f)!r:.60}" for f in layout.model.context_key())
    return f"{layout.model.collection_name()} {{{key}}}"


class Exporter:
    def __init__(self, store: "Store", path: str | os.PathLike[str], *, on_progress: Progress | None = None) -> None:
        self.store = store
        self.root = os.path.abspath(os.fspath(path))
        self.on_progress = on_progress
        self.report = ExportReport(self.root)
        self._dirs: set[str] = set()

    async def run(self) -> ExportReport:
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise DumpError(f"{self.root} exists and is not a directory")
        os.makedirs(self.root, exist_ok=True)
        started = time.monotonic()
        for layout in LAYOUTS:
            await self._layout(layout)
        self.report.seconds = time.monotonic() - started
        return self.report

    async def _layout(self, layout: Layout) -> None:
        repo = self.store.repository(layout.model)
        chunk: list[tuple[tuple[str, ...], bytes, str]] = []
        pending: asyncio.Future[_Written] | None = None
        done = 0
        try:
            async for doc in repo.iterate({}, layout.projection):
                try:
                    parts = (*layout.root, *layout.path(doc))
                    data = dumps(to_json(layout.value(doc)))
                except Skip as exc:
                    self.report.skip(layout.name, _describe(layout, doc), str(exc))
                    continue
                except (TypeError, ValueError) as exc:
                    self.report.skip(layout.name, _describe(layout, doc), f"the value has no JSON form: {exc}")
                    continue
                chunk.append((parts, data, _describe(layout, doc)))
                if len(chunk) >= CHUNK:
                    # One chunk is written in a thread while the cursor fills the next one.
                    if pending is not None:
                        done += self._count(layout, await pending)
                    pending = asyncio.ensure_future(asyncio.to_thread(self._write, chunk))
                    chunk = []
            if pending is not None:
                done += self._count(layout, await pending)
                pending = None
            if chunk:
                done += self._count(layout, await asyncio.to_thread(self._write, chunk))
        finally:
            if pending is not None and not pending.done():
                await asyncio.gather(pending, return_exceptions=True)

    def _count(self, layout: Layout, written: "_Written") -> int:
        count, skipped = written
        self.report.adapters[layout.name].written += count
        for what, reason in skipped:
            self.report.skip(layout.name, what, reason)
        if self.on_progress:
            self.on_progress(layout.name, self.report.adapters[layout.name].written)
        return count + len(skipped)

    def _write(self, chunk: list[tuple[tuple[str, ...], bytes, str]]) -> "_Written":
        """Runs in a worker thread; returns what it wrote and what it refused instead of touching the report."""
        written, skipped = 0, []
        for parts, data, what in chunk:
            directory = os.path.join(self.root, *parts[:-1])
            try:
                if directory not in self._dirs:
                    os.makedirs(directory, exist_ok=True)
                    if len(self._dirs) >= MAX_DIRS:
                        self._dirs.clear()
                    self._dirs.add(directory)
                write_atomic(directory, parts[-1], data)
            except OSError as exc:
                if exc.errno not in _NAME_ERRORS:
                    raise DumpError(f"cannot write {os.path.join(directory, parts[-1])}: {exc}") from exc
                skipped.append((what, f"cannot be written: {exc.strerror or exc}"))
                continue
            written += 1
        return written, skipped


_Written = tuple[int, list[tuple[str, str]]]


async def export_dump(store: "Store", path: str | os.PathLike[str], *,
                      on_progress: Progress | None = None) -> ExportReport:
    """Write every stored document as a backtest-kit dump under `path` (the `dump/` directory)."""
    return await Exporter(store, path, on_progress=on_progress).run()
