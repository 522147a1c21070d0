"""Reading a dump from disk: every file below a layout's root, one batch at a time, never outside the dump.

Symbolic links, to files or folders, are reported and never followed; a file larger than a document can be is
refused before it is read; a file opened is opened without following a link swapped in since the walk.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

from .jsonfile import SUFFIX, TMP_PREFIX, CorruptJson, loads
from .layout import DATA_DIRS, DATA_ROOTS, Layout
from .reports import MAX_LISTED, printable

# A file larger than this cannot become a MongoDB document: it is refused before it is read.
MAX_FILE_BYTES = 16 * 1024 * 1024


@dataclass
class DumpFile:
    rel: str
    parts: tuple[str, ...]  # below the layout's root, the last one without `.json`
    value: Any = None
    error: str | None = None


LINK = "a symbolic link: never followed (it could lead outside the dump)"


def _walk(directory: str, parts: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str, str | None]]:
    """Every file below `directory` as (parts, path, error), depth first, one open directory handle per level.

    Symbolic links, to files or folders, are reported and never followed: nothing outside the dump is read.
    """
    try:
        it = os.scandir(directory)
    except FileNotFoundError:
        return
    with it:
        for entry in it:
            try:
                if entry.is_symlink():
                    yield (*parts, entry.name), entry.path, LINK
                elif entry.is_dir(follow_symlinks=False):
                    yield from _walk(entry.path, (*parts, entry.name))
                elif entry.is_file(follow_symlinks=False):
                    yield (*parts, entry.name), entry.path, None
            except OSError:
                yield (*parts, entry.name), entry.path, None  # unreadable: reported when read


def _inside(root: str, path: str) -> bool:
    real_root = os.path.realpath(root)
    return os.path.realpath(path) == real_root or os.path.realpath(path).startswith(real_root + os.sep)


def _read(path: str) -> bytes:
    """The file's bytes, refusing a link swapped in since the walk and anything larger than a document can be."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        size = os.fstat(fd).st_size
        if size > MAX_FILE_BYTES:
            raise TooLarge(f"{size:,} bytes: more than a MongoDB document can hold (16 MiB), not read")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)


class TooLarge(Exception):
    """A file that cannot become a document, refused before it is read."""


def files(root: str, layout: Layout, under: tuple[str, ...] = ()) -> Generator[DumpFile, None, None]:
    base = os.path.join(root, *layout.root, *under)
    if os.path.lexists(base) and not _inside(root, base):  # e.g. `dump/data` itself a link to elsewhere
        yield DumpFile("/".join((*layout.root, *under)), under, error=LINK)
        return
    for parts, path, error in _walk(base, under):
        name = parts[-1]
        rel = "/".join((*layout.root, *parts))
        if error is not None:
            yield DumpFile(rel, parts, error=error)
            continue
        if name.startswith(TMP_PREFIX):
            yield DumpFile(rel, parts, error="temporary file of an interrupted write")
            continue
        if not name.endswith(SUFFIX):
            continue  # not an entity file: backtest-kit ignores it too
        parts = (*parts[:-1], name[: -len(SUFFIX)])
        if len(parts) not in layout.depths:
            yield DumpFile(rel, parts, error="unexpected location (a name containing '/'?)")
            continue
        try:
            value = loads(_read(path))
        except CorruptJson as exc:
            yield DumpFile(rel, parts, error=f"corrupt JSON: {exc}")
            continue
        except TooLarge as exc:
            yield DumpFile(rel, parts, error=str(exc))
            continue
        except OSError as exc:
            yield DumpFile(rel, parts, error=LINK if exc.errno == errno.ELOOP else f"unreadable: {exc.strerror or exc}")
            continue
        if value is None and not layout.nullable:
            yield DumpFile(rel, parts, error=f"literal null: backtest-kit never writes one for {layout.name}")
            continue
        yield DumpFile(rel, parts, value)


def take(files: Iterator[DumpFile], n: int) -> list[DumpFile]:
    out = []
    for f in files:
        out.append(f)
        if len(out) >= n:
            break
    return out


def ignored(root: str) -> list[str]:
    """Top-level entries (and `data/` entries) that are not persistence data."""
    ignored = []
    with os.scandir(root) as it:
        for entry in it:
            if entry.name not in DATA_ROOTS:
                ignored.append(printable(entry.name))
    data = os.path.join(root, "data")
    if os.path.isdir(data):
        with os.scandir(data) as it:
            ignored.extend(printable(f"data/{e.name}") for e in it if e.name not in DATA_DIRS)
    return sorted(ignored)[:MAX_LISTED]
