"""Export the store as a backtest-kit `./dump` that the JavaScript framework reads back.

Every collection is streamed from a cursor; files are written in a worker thread, one chunk at a time, while the
next chunk is read. Each file is compact UTF-8 JSON without NaN/Infinity tokens, written atomically through a
`.tmp-<12 hex>-<name>` sibling, fsync and rename. A document whose context cannot be a file name (a `/`, NUL,
`.`/`..`, too long) is refused and reported; nothing is ever written outside the target directory.

No link below the target is ever followed: each folder is made and opened relative to its open parent with
O_NOFOLLOW|O_DIRECTORY, each file created relative to its open folder with O_NOFOLLOW|O_EXCL and renamed in that
folder. A link (dangling or not) or a file where a folder belongs is reported with every document it would have
held; the target itself may be a link, since its user named it.

Where a path joins context fields with `_`, two contexts can land on one file (`strategy("A_B", "C", "x")` and
`strategy("A", "B_C", "x")`): one would silently overwrite the other, and the framework would read the survivor
for both. A pre-pass over the key fields finds such paths (memory: one entry per distinct context, not per
document) and every document sharing one is refused and reported with the others' keys.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import DumpError
from .importer import Progress
from .jsonfile import dumps, to_json, write_atomic
from .layout import LAYOUTS, Layout
from .names import Skip
from .reports import ExportReport

if TYPE_CHECKING:
    from ..store import Store

CHUNK = 500
WRITERS = 8
# Open folder handles kept between chunks (each file is written relative to its folder's handle).
MAX_DIRS = 128
# Distinct contexts one adapter may hold for the collision check; a database has a handful per strategy.
MAX_CONTEXTS = 100_000
# Failures that concern one file name only; anything else (disk full, read-only, permissions) stops the export.
_NAME_ERRORS = {errno.ENAMETOOLONG, errno.EINVAL, errno.EILSEQ}


def _key_text(layout: Layout, doc: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{f}={doc.get(f)!r:.60}" for f in layout.model.context_key()) + "}"


def _describe(layout: Layout, doc: dict[str, Any]) -> str:
    return f"{layout.model.collection_name()} {_key_text(layout, doc)}"


# A document's place in the collision check: the values of its joined fields, and its file name when the file
# is not fixed by them (Partial and Breakeven: the signal id).
_Slot = tuple[tuple[Any, ...], str | None]


async def _collisions(store: "Store", layout: Layout) -> dict[_Slot, list[dict[str, Any]]]:
    """The documents whose path another context's document shares, each with the keys of the others."""
    if not layout.joined:
        return {}
    repo = store.repository(layout.model)
    key_fields = layout.model.context_key()
    file_is_fixed = set(key_fields) <= set(layout.joined)
    projection = {**{f: 1 for f in key_fields}, "_id": 0}
    # Pass 1: each distinct context and the path it writes to (its directory, when the file name varies).
    places: dict[tuple[Any, ...], tuple[str, ...]] = {}
    async for doc in repo.iterate({}, projection):
        try:
            path = layout.path(doc)  # also checks that the key fields are strings (and booleans): hashable
        except Skip:
            continue  # refused anyway, with its own reason
        context = tuple(doc.get(f) for f in layout.joined)
        if context not in places:
            if len(places) >= MAX_CONTEXTS:
                raise DumpError(f"{layout.model.collection_name()} holds over {MAX_CONTEXTS:,} contexts: too many "
                                "to check for shared paths")
            places[context] = path if file_is_fixed else path[:-1]
    sharing: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for context, path in places.items():
        sharing.setdefault(path, []).append(context)
    del places
    shared = [contexts for contexts in sharing.values() if len(contexts) > 1]
    found: dict[_Slot, list[dict[str, Any]]] = {}
    for contexts in shared:
        keys = [dict(zip(layout.joined, c)) for c in contexts]
        if file_is_fixed:
            for context, key in zip(contexts, keys):
                found[(context, None)] = [k for k in keys if k is not key]
            continue
        # Pass 2, for shared directories only: which file names more than one of their contexts writes.
        files: dict[str, list[dict[str, Any]]] = {}
        for key in keys:
            async for doc in repo.iterate(key, projection):
                try:
                    files.setdefault(layout.path(doc)[-1], []).append({f: doc.get(f) for f in key_fields})
                except Skip:
                    continue
        for name, docs in files.items():
            if len(docs) > 1:
                for doc in docs:
                    found[(tuple(doc.get(f) for f in layout.joined), name)] = [d for d in docs if d is not doc]
    return found


class Exporter:
    def __init__(self, store: "Store", path: str | os.PathLike[str], *, on_progress: Progress | None = None) -> None:
        self.store = store
        self.root = os.path.abspath(os.fspath(path))
        self.on_progress = on_progress
        self.report = ExportReport(self.root)
        self._dirs: dict[tuple[str, ...], int] = {}  # open folder handles below the target; () is the target
        self._pool: ThreadPoolExecutor | None = None

    async def run(self) -> ExportReport:
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise DumpError(f"{self.root} exists and is not a directory")
        os.makedirs(self.root, exist_ok=True)
        started = time.monotonic()
        self._dirs[()] = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with ThreadPoolExecutor(WRITERS, thread_name_prefix="export-dump") as self._pool:
                for layout in LAYOUTS:
                    await self._layout(layout)
        finally:
            self._pool = None
            self._close_dirs(keep_root=False)
        self.report.seconds = time.monotonic() - started
        return self.report

    def _close_dirs(self, *, keep_root: bool) -> None:
        for folder in [f for f in self._dirs if f or not keep_root]:
            os.close(self._dirs.pop(folder))

    def _folder(self, folder: tuple[str, ...]) -> int:
        """The open handle of `folder` (below the target), made if missing; never through a link."""
        fd = self._dirs.get(folder)
        if fd is not None:
            return fd
        parent = self._folder(folder[:-1])
        name = folder[-1]
        try:
            os.mkdir(name, dir_fd=parent)
        except FileExistsError:
            pass  # a folder, or something in the way: the open below tells
        try:
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, dir_fd=parent)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            link = stat.S_ISLNK(os.lstat(name, dir_fd=parent).st_mode)
            raise _InTheWay("/".join(folder), "a symbolic link: never followed (it could lead outside the target)"
                            if link else "not a folder") from None
        self._dirs[folder] = fd
        return fd

    async def _layout(self, layout: Layout) -> None:
        repo = self.store.repository(layout.model)
        collisions = await _collisions(self.store, layout)
        chunk: list[tuple[tuple[str, ...], bytes, str]] = []
        pending: asyncio.Future[_Written] | None = None
        done = 0
        try:
            async for doc in repo.iterate({}, layout.projection):
                try:
                    path = layout.path(doc)
                    if collisions:
                        slot = tuple(doc.get(f) for f in layout.joined), None
                        others = collisions.get(slot) or collisions.get((slot[0], path[-1]))
                        if others:
                            raise Skip(f"its path {'/'.join((*layout.root, *path))} is also the path of "
                                       + "; ".join(_key_text(layout, o) for o in others[:3])
                                       + (f" and {len(others) - 3} more" if len(others) > 3 else "")
                                       + ": neither is written")
                    parts = (*layout.root, *path)
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
        skipped: list[tuple[str, str]] = []
        folders: dict[tuple[str, ...], list[tuple[str, bytes, str]]] = {}
        for parts, data, what in chunk:
            folders.setdefault(parts[:-1], []).append((parts[-1], data, what))
        written = 0
        ready: list[tuple[int, str, str, bytes, str]] = []
        for folder, items in folders.items():
            directory = os.path.join(self.root, *folder)
            try:
                fd = self._folder(folder)
            except _InTheWay as exc:
                skipped.extend((what, f"cannot be written: {exc.path} is {exc.reason}") for _, _, what in items)
                continue
            except OSError as exc:
                for _, _, what in items:
                    self._failed(directory, exc, what, skipped)
                continue
            ready.extend((fd, directory, name, data, what) for name, data, what in items)
            if len(self._dirs) >= MAX_DIRS:
                # The files of these handles are written before the handles are closed.
                written += self._write_files(ready, skipped)
                ready = []
                self._close_dirs(keep_root=True)
        return written + self._write_files(ready, skipped), skipped

    def _write_files(self, ready: list[tuple[int, str, str, bytes, str]], skipped: list[tuple[str, str]]) -> int:
        # Each file is fsynced before its rename: the time goes to waiting on the disk, so several at once.
        errors = self._pool.map(_write_one, ready) if self._pool else map(_write_one, ready)
        written = 0
        for (_, directory, name, _, what), error in zip(ready, errors):
            if error is None:
                written += 1
            else:
                self._failed(os.path.join(directory, name), error, what, skipped)
        return written

    @staticmethod
    def _failed(path: str, exc: OSError, what: str, skipped: list[tuple[str, str]]) -> None:
        if exc.errno not in _NAME_ERRORS:
            raise DumpError(f"cannot write {path}: {exc}") from exc
        skipped.append((what, f"cannot be written: {exc.strerror or exc}"))


class _InTheWay(Exception):
    """Something other than a folder (a link, a file) where a folder of the dump belongs."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path, self.reason = path, reason


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _write_one(item: tuple[int, str, str, bytes, str]) -> OSError | None:
    fd, directory, name, data, _ = item
    try:
        write_atomic(directory, name, data, dir_fd=fd)
    except OSError as exc:
        return exc
    return None


_Written = tuple[int, list[tuple[str, str]]]


async def export_dump(store: "Store", path: str | os.PathLike[str], *,
                      on_progress: Progress | None = None) -> ExportReport:
    """Write every stored document as a backtest-kit dump under `path` (the `dump/` directory)."""
    return await Exporter(store, path, on_progress=on_progress).run()
