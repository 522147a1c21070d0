"""`backtest-store migrate plan|check|apply`: compare the declared indexes with the live ones, and sync them.

Exit codes: 0 in sync / applied / nothing to do; 1 drift (`check`) or confirmation declined (`apply`);
2 error or refusal (no URI, server unreachable, conflicts without --replace, duplicate keys, no TTY without --yes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..config import redact
from .connect import add_uri_options, mongo_database, resolve_uri
from ..migrations import ACTIONS, IndexChange, MigrationRefused, Operation, apply, drift, plan

ACTION_STYLES = {"create": "green", "drop": "red", "conflict": "bold magenta", "unchanged": "dim"}


def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_uri_options(common)
    common.add_argument("--json", action="store_true", help="machine-readable output")

    parser = sub.add_parser("migrate", help="compare and sync the declared MongoDB indexes",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="migrate_action", required=True, metavar="ACTION")

    p = actions.add_parser("plan", parents=[common], help="show what apply would change")
    p.set_defaults(func=run_plan)

    c = actions.add_parser("check", parents=[common],
                           help="exit 0 when the indexes are in sync, 1 on drift, 2 on error")
    c.set_defaults(func=run_check)

    a = actions.add_parser("apply", parents=[common], help="create missing indexes (and prune/replace on request)")
    a.add_argument("--prune", action="store_true", help="drop undeclared indexes (after creating)")
    a.add_argument("--hide", action="store_true", help="with --prune: hide undeclared indexes instead of dropping")
    a.add_argument("--replace", action="store_true", help="drop and recreate conflicting indexes")
    a.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    a.set_defaults(func=run_apply)


# -- connection ----------------------------------------------------------------------------------------------

async def _with_database(args: argparse.Namespace, work: Any) -> int:
    uri = resolve_uri(args)
    async with mongo_database(uri, args.timeout, "backtest-store-migrate") as database:
        return await work(database, redact(uri))


# -- output --------------------------------------------------------------------------------------------------

def _console() -> Console:
    # Wide when not a terminal, so captured output and CI logs keep one index per line.
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200, highlight=False)


def _keys(spec: dict[str, Any] | None) -> str:
    if not spec:
        return ""
    keys = ", ".join(f"{f}: {d}" for f, d in spec["key"])
    options = [k for k, v in spec.items() if k not in ("key", "name") and v]
    return "{" + keys + "}" + ("".join(f" {o}" for o in options) if options else "")


def _summary(changes: Sequence[IndexChange]) -> str:
    counts = Counter(c.action for c in changes)
    return ", ".join(f"{counts[a]} {a}" for a in ACTIONS if counts[a]) or "no declared or live indexes"


def print_plan(changes: Sequence[IndexChange], database: str, where: str) -> None:
    console = _console()
    table = Table(title=Text(f"indexes of database {database} at {where}"), title_justify="left")
    for column in ("collection", "index", "action", "keys", "reason"):
        table.add_column(column, no_wrap=column != "reason", overflow="fold")
    for change in changes:
        spec = change.declared or change.live
        table.add_row(Text(change.collection), Text(change.name),
                      Text(change.action, style=ACTION_STYLES.get(change.action, "")),
                      Text(_keys(spec)), Text(change.reason))
    console.print(table)
    console.print(Text(_summary(changes)))


def _plan_json(changes: Sequence[IndexChange], database: str, where: str) -> dict[str, Any]:
    return {"database": database, "uri": where, "in_sync": not drift(changes),
            "summary": dict(Counter(c.action for c in changes)), "changes": [c.as_dict() for c in changes]}


def _dump(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


# -- commands ------------------------------------------------------------------------------------------------

def run_plan(args: argparse.Namespace) -> int:
    async def work(database: AsyncDatabase, where: str) -> int:
        changes = await plan(database)
        if args.json:
            _dump(_plan_json(changes, database.name, where))
        else:
            print_plan(changes, database.name, where)
        return 0

    return asyncio.run(_with_database(args, work))


def run_check(args: argparse.Namespace) -> int:
    async def work(database: AsyncDatabase, where: str) -> int:
        changes = await plan(database)
        in_sync = not drift(changes)
        if args.json:
            _dump(_plan_json(changes, database.name, where))
        else:
            print_plan(changes, database.name, where)
            _console().print(Text("in sync" if in_sync else "drift: run `backtest-store migrate plan` / `apply`",
                                  style="green" if in_sync else "bold red"))
        return 0 if in_sync else 1

    return asyncio.run(_with_database(args, work))


def _ask(operations: list[Operation], args: argparse.Namespace) -> bool:
    if args.yes:
        return True  # the report that follows lists every change
    out = sys.stderr if args.json else sys.stdout
    print("backtest-store migrate apply will:", file=out)
    for operation in operations:
        print(f"  {operation.describe()}", file=out)
    if not sys.stdin or not sys.stdin.isatty():
        raise MigrationRefused("stdin is not a terminal, so apply cannot ask for confirmation: pass --yes "
                               "(nothing was changed)")
    print(f"Apply {len(operations)} change(s)? [y/N] ", end="", file=out, flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, EOFError):
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def run_apply(args: argparse.Namespace) -> int:
    async def work(database: AsyncDatabase, where: str) -> int:
        try:
            report = await apply(database, prune=args.prune, hide=args.hide, replace=args.replace,
                                 confirm=lambda ops: _ask(ops, args))
        except MigrationRefused as exc:
            if args.json:
                _dump({"database": database.name, "uri": where, "refused": str(exc),
                       "conflicts": [c.as_dict() for c in exc.changes],
                       "duplicates": [vars(d) for d in exc.duplicates]})
            raise
        if args.json:
            _dump({"database": database.name, "uri": where, **report.as_dict()})
        else:
            for operation in report.applied:
                print(f"{_past(operation.op)} {operation.collection}.{operation.name} "
                      f"{_keys(operation.change.declared or operation.change.live)}")
            for change in report.kept:
                print(f"kept {change.collection}.{change.name} ({change.reason}; --prune drops it)")
            if report.aborted:
                print("aborted: nothing was changed")
            elif not report.applied:
                print(f"nothing to do: database {database.name} at {where} is "
                      + ("in sync" if not report.kept else "missing nothing"))
            else:
                print(f"{len(report.applied)} change(s) applied to database {database.name} at {where}")
        return 1 if report.aborted else 0

    return asyncio.run(_with_database(args, work))


def _past(op: str) -> str:
    return {"create": "created", "drop": "dropped", "hide": "hidden", "replace": "replaced",
            "unhide": "unhidden", "rehide": "hidden"}.get(op, op)
