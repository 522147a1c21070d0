"""`import-dump` and `export-dump`: move a backtest-kit `./dump` into the store and back.

Servers: those of CC_MONGO_CONNECTION_STRING / CC_REDIS_* when set, else embedded ones with their data under
--data-dir (default ./.backtest-store).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..config import Settings
from ..dump import DumpError, ExportReport, ImportReport, export_dump, import_dump
from ..dump.importer import BATCH_SIZE
from ..migrations.diff import CREATE, plan
from ..contracts import DOCUMENTS
from ..store import Store
from . import output
from .connect import DEFAULT_DATA_DIR, open_store, warn_missing_indexes


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    imp = sub.add_parser("import-dump", help="import a backtest-kit dump/ directory into MongoDB",
                         description="Upsert every persistence file of a backtest-kit dump/ directory (idempotent).")
    imp.add_argument("path", metavar="PATH", help="the dump/ directory")
    imp.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"documents per bulk write ({BATCH_SIZE})")
    _common(imp)
    imp.set_defaults(func=_import)

    exp = sub.add_parser("export-dump", help="export MongoDB as a backtest-kit dump/ directory",
                         description="Write every stored document as a dump/ the JavaScript framework reads back.")
    exp.add_argument("path", metavar="PATH", help="the dump/ directory to write (created if missing)")
    _common(exp)
    exp.set_defaults(func=_export)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                        help="embedded servers' data directory, when CC_MONGO_CONNECTION_STRING is not set "
                             f"(default {DEFAULT_DATA_DIR})")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--no-progress", action="store_true", help="do not show progress on stderr")


def _run(args: argparse.Namespace, verb: str,
         job: Callable[[Store, str, Callable[[str, int], None]], Awaitable[Any]]) -> Any:
    console = output.console(stderr=True)
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                        disable=args.no_progress, transient=False)
    tasks: dict[str, Any] = {}

    def on_progress(adapter: str, files: int) -> None:
        if adapter not in tasks:
            tasks[adapter] = progress.add_task(adapter, total=None)
        progress.update(tasks[adapter], description=f"{verb} {adapter}: {files:,} files")

    async def main() -> Any:
        async with open_store(args.data_dir) as store:
            if Settings.configured_in_env():
                if verb == "import":
                    await _indexes_for_import(store, console)
                await warn_missing_indexes(store, console)
            with progress:
                return await job(store, args.path, on_progress)

    return asyncio.run(main())


async def _indexes_for_import(store: Store, console: Console) -> None:
    """An import upserts by our unique keys: without the indexes, every row is a collection scan, and a dump of any
    size fails on the server's time limit. A database that is ours and empty gets our indexes here (what
    `migrate apply` would create, with nothing to migrate); any other database missing them is refused before
    anything is written."""
    missing = [c for c in await plan(store.database) if c.action == CREATE]
    if not missing:
        return
    names = ", ".join(sorted({c.collection for c in missing}))
    if await _ours_and_empty(store):
        await store.create_indexes()
        console.print(f"created the indexes of {names} in the empty database {store.database.name} "
                      "(as `backtest-store migrate apply` would)", highlight=False)
        return
    raise DumpError(f"indexes are missing on {names}, and the database holds data: run `backtest-store migrate apply` "
                    "first, then import again (without them every row is a collection scan)")


async def _ours_and_empty(store: Store) -> bool:
    ours = {model.collection_name() for model in DOCUMENTS}
    for name in await store.database.list_collection_names():
        if name.startswith("system.") or name not in ours:
            return False
        if await store.database[name].find_one({}, {"_id": 1}) is not None:
            return False
    return True


def _import(args: argparse.Namespace) -> int:
    if not os.path.isdir(args.path):  # before any server is started
        raise DumpError(f"{os.path.abspath(args.path)} is not a directory")
    report: ImportReport = _run(args, "import", lambda store, path, cb: import_dump(
        store, path, batch_size=args.batch_size, on_progress=cb))
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
        return 0
    table = Table("adapter", "imported", "unchanged", "skipped", title=f"import-dump {report.path}")
    for name, a in report.adapters.items():
        table.add_row(name, f"{a.imported:,}", f"{a.unchanged:,}", f"{a.skipped:,}")
    table.add_row("total", f"{report.imported:,}", f"{report.unchanged:,}", f"{report.skipped:,}", style="bold")
    out = output.console()
    out.print(table)
    _print_list(out, "skipped", [f"{p}: {r}" for p, r in report.skipped_files], report.skipped)
    if report.ignored:
        out.print(f"not persistence data, left alone: {', '.join(report.ignored)}")
    out.print(f"{report.files:,} files in {report.seconds:.1f} s")
    return 0


def _export(args: argparse.Namespace) -> int:
    path = os.path.abspath(args.path)  # checked, and created, before any server is started
    if os.path.exists(path) and not os.path.isdir(path):
        raise DumpError(f"{path} exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise DumpError(f"cannot create {path}: {exc.strerror}") from None
    report: ExportReport = _run(args, "export", lambda store, path, cb: export_dump(store, path, on_progress=cb))
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
        return 0
    table = Table("adapter", "written", "skipped", title=f"export-dump {report.path}")
    for name, a in report.adapters.items():
        table.add_row(name, f"{a.written:,}", f"{a.skipped:,}")
    table.add_row("total", f"{report.written:,}", f"{report.skipped:,}", style="bold")
    out = output.console()
    out.print(table)
    _print_list(out, "refused", [f"{d}: {r}" for d, r in report.skipped_documents], report.skipped)
    out.print(f"{report.written:,} files in {report.seconds:.1f} s")
    return 0


def _print_list(out: Console, label: str, lines: list[str], total: int) -> None:
    if not total:
        return
    out.print(f"{label} ({total:,}):", markup=False)
    for line in lines:
        out.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    if total > len(lines):
        out.print(f"  ... and {total - len(lines):,} more", markup=False)

