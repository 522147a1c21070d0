"""Reading a dump from disk: every file below a layout's root, one batch at a time, never outside the dump.

Symbolic links, to files or folders, are reported and never followed; so are FIFOs, sockets and devices (never
opened: a FIFO would block the read), a file where a folder belongs, and folders deeper than any file of the
adapter lies (never entered: a walk of 1,200 nested folders, or past PATH_MAX, stays short). A file larger than a
document can be is refused before it is read; a file opened is opened without following a link swapped in since
the walk, and only if it is a regular file.

Memory: a batch holds files up to a budget of parsed bytes, not a count of files (a 15 MiB file of `[{},{},...]`
is 24 times its size once parsed). Before a file is parsed, its structure is counted outside its strings: a file
whose containers and elements alone would encode to more than a document can hold is refused unparsed, and the
count gives the file's parsed size for the budget.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

from .jsonfile import SUFFIX, TMP_PREFIX, CorruptJson, loads
from .layout import DATA_DIRS, DATA_ROOTS, Layout
from .reports import MAX_LISTED, printable

# A file larger than this cannot become a MongoDB document: it is refused before it is read.
MAX_FILE_BYTES = 16 * 1024 * 1024
# The parsed files one batch may hold, by estimate (`_parsed_cost`); a file over it is a batch of its own.
BATCH_BUDGET = 64 * 1024 * 1024
# The least BSON a JSON container ({} or [], with its length and terminator) and an element (type byte and the
# NUL ending its key, which may be empty) encode to: the bound below which a file's structure alone fits a document.
_BSON_CONTAINER, _BSON_ELEMENT = 5, 2
# What CPython spends per parsed container and per element (a dict or list object; a pointer and a value), by
# measure rounded up: the estimate that keeps a batch within BATCH_BUDGET.
_PY_CONTAINER, _PY_ELEMENT = 64, 24
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')


@dataclass
class DumpFile:
    rel: str
    parts: tuple[str, ...]  # below the layout's root, the last one without `.json`
    value: Any = None
    error: str | None = None
    cost: int = 0  # the estimated bytes its parsed value takes (`_parsed_cost`)


LINK = "a symbolic link: never followed (it could lead outside the dump)"


NOT_A_FOLDER = "not a folder: a folder of the dump belongs here"
NOT_A_FILE = "not a regular file (a FIFO, socket or device): never opened"


def _walk(directory: str, parts: tuple[str, ...] = (), max_depth: int = 8,
          top: bool = True) -> Iterator[tuple[tuple[str, ...], str, str | None]]:
    """Every file below `directory` as (parts, path, error), depth first, one open directory handle per level.

    Symbolic links, to files or folders, are reported and never followed: nothing outside the dump is read. A folder
    at `max_depth` parts holds nothing an import could read (the caller's margin lets files one level too deep
    still be reported one by one): it is reported, not entered.
    """
    try:
        it = os.scandir(directory)
    except FileNotFoundError:
        if top:
            return
        yield parts, directory, "unreadable: it vanished during the import"
        return
    except NotADirectoryError:
        yield parts, directory, NOT_A_FOLDER
        return
    except OSError as exc:
        yield parts, directory, f"unreadable folder: {exc.strerror or exc}"
        return
    with it:
        for entry in it:
            try:
                if entry.is_symlink():
                    yield (*parts, entry.name), entry.path, LINK
                elif entry.is_dir(follow_symlinks=False):
                    if len(parts) + 1 >= max_depth:
                        yield (*parts, entry.name), entry.path, "unexpected location: a folder deeper than any file " \
                                                                "of this kind lies (not entered)"
                    else:
                        yield from _walk(entry.path, (*parts, entry.name), max_depth, False)
                elif entry.is_file(follow_symlinks=False):
                    yield (*parts, entry.name), entry.path, None
                else:
                    yield (*parts, entry.name), entry.path, NOT_A_FILE
            except OSError:
                yield (*parts, entry.name), entry.path, None  # unreadable: reported when read


def _inside(root: str, path: str) -> bool:
    real_root = os.path.realpath(root)
    return os.path.realpath(path) == real_root or os.path.realpath(path).startswith(real_root + os.sep)


def _read(path: str) -> bytes:
    """The file's bytes, refusing a link swapped in since the walk and anything larger than a document can be."""
    # O_NONBLOCK: a FIFO swapped in since the walk must not block the open.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TooLarge(NOT_A_FILE)
        size = info.st_size
        if size > MAX_FILE_BYTES:
            raise TooLarge(f"{size:,} bytes: more than a MongoDB document can hold (16 MiB), not read")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)


class TooLarge(Exception):
    """A file that cannot become a document, refused before it is read or parsed."""


def _parsed_cost(data: bytes) -> int:
    """The bytes `data` takes once parsed, estimated from its containers and elements outside its strings; raises
    TooLarge when those alone would encode to more BSON than a document holds."""
    if b'"' in data:
        data = _STRINGS.sub(b'""', data)
    containers = data.count(b"{") + data.count(b"[")
    # Every ':' is an element of an object, every ',' separates elements of an array or an object: the file holds
    # at least as many elements as either count (the sum would count an object's members twice).
    elements = max(data.count(b","), data.count(b":"))
    least = _BSON_CONTAINER * containers + _BSON_ELEMENT * elements
    if least > MAX_FILE_BYTES:
        raise TooLarge(f"{containers:,} objects and arrays, {elements:,} values: at least {least:,} bytes of BSON, "
                       "more than a MongoDB document can hold (16 MiB), not parsed")
    return len(data) + _PY_CONTAINER * containers + 2 * _PY_ELEMENT * elements


def files(root: str, layout: Layout, under: tuple[str, ...] = ()) -> Generator[DumpFile, None, None]:
    base = os.path.join(root, *layout.root, *under)
    if os.path.lexists(base) and not _inside(root, base):  # e.g. `dump/data` itself a link to elsewhere
        yield DumpFile("/".join((*layout.root, *under)), under, error=LINK)
        return
    for parts, path, error in _walk(base, under, max(layout.depths) + 2):
        rel = "/".join((*layout.root, *parts))
        if error is not None:
            yield DumpFile(rel, parts, error=error)
            continue
        name = parts[-1]
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
            data = _read(path)
            cost = _parsed_cost(data)
            value = loads(data)
            del data
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
        yield DumpFile(rel, parts, value, cost=cost)


def take(files: Iterator[DumpFile], n: int, budget: int = BATCH_BUDGET) -> list[DumpFile]:
    """The next batch: up to `n` files, and no more once their parsed values reach `budget` bytes."""
    out, spent = [], 0
    for f in files:
        out.append(f)
        spent += f.cost
        if len(out) >= n or spent >= budget:
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
