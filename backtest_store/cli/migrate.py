"""`backtest-store migrate plan|check|apply`: compare the declared indexes with the live ones, and sync them.

An index with a declared index's keys and options is that index under any name (the TypeScript original's
mongoose names are adopted as they are). Undeclared indexes are `foreign` (listed, not drift, dropped only by
--prune) or, when unique on a key ours does not imply, `blocking`: they make our writes fail with E11000.

Through a mongos, `plan` and `check` also read each collection's shard key from the config database and report a
unique index it keeps from being enforced or an upsert it keeps from being targeted (errors: `check` fails), and
calls it sends to every shard (warnings); docs/scale-out.md says which keys to choose. On a replica set or a
standalone there is nothing to check.

Exit codes: 0 in sync / applied / nothing to do; 1 drift or a sharding error (`check`) or confirmation declined (`apply`);
2 error or refusal (no URI, server unreachable, conflicts without --replace, duplicate keys, blocking indexes
without --replace-blocking (the rest is applied first), no TTY without --yes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..config import Settings, uncached_from_env
from ..drivers import Database
from ..migrations import (
    ACTIONS,
    IndexChange,
    LegacyDocuments,
    MigrationRefused,
    Operation,
    apply,
    drift,
    keys_text,
    legacy_documents,
    plan,
)
from ..migrations.operations import blocking_message
from ..migrations.sharding import ERROR, ShardingReport, analyse, read_shard_config
from ..contracts import DOCUMENTS
from ..store import UNCACHED
from ..wording import plural
from . import output
from .connect import add_uri_options, target_database, url_of

# The library's messages name its keyword arguments; a CLI user knows the options.
_OPTIONS = {"replace_blocking=True": "--replace-blocking", "replace=True": "--replace", "prune=True": "--prune",
            "hide=True": "--hide"}


def _options(text: str) -> str:
    for argument, option in _OPTIONS.items():
        text = text.replace(argument, option)
    return text

ACTION_STYLES = {"create": "green", "conflict": "bold magenta", "blocking": "bold red", "foreign": "yellow",
                 "unchanged": "dim"}


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_uri_options(common)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    sharding = argparse.ArgumentParser(add_help=False)
    sharding.add_argument("--config-db", metavar="NAME",
                          help="read shard keys from NAME.collections on the same server instead of the cluster's "
                               "config database: a copy of it, or the keys you plan to shard with (same shape)")

    parser = sub.add_parser("migrate", help="compare and sync the declared MongoDB indexes",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="migrate_action", required=True, metavar="ACTION")

    p = actions.add_parser("plan", parents=[common, sharding], help="show what apply would change")
    p.set_defaults(func=run_plan)

    c = actions.add_parser("check", parents=[common, sharding],
                           help="exit 0 when the indexes are in sync, 1 on drift, 2 on error")
    c.add_argument("--strict", action="store_true", help="count foreign (undeclared, non-blocking) indexes as drift")
    c.set_defaults(func=run_check)

    a = actions.add_parser("apply", parents=[common], help="create missing indexes (and prune/replace on request)")
    a.add_argument("--prune", action="store_true", help="drop foreign indexes (after creating)")
    a.add_argument("--hide", action="store_true", help="with --prune: hide foreign indexes instead of dropping")
    a.add_argument("--replace", action="store_true",
                   help="drop and recreate conflicting indexes (uniqueness is off in between)")
    a.add_argument("--replace-blocking", action="store_true",
                   help="drop blocking indexes once the declared unique index is built (uniqueness stays on)")
    a.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    a.set_defaults(func=run_apply)


# -- connection ----------------------------------------------------------------------------------------------

async def _with_database(args: argparse.Namespace, work: Callable[[Database, str], Awaitable[int]]) -> int:
    async with target_database(args, "backtest-store-migrate") as (database, where):
        return await work(database, where)


# -- output --------------------------------------------------------------------------------------------------

def _console() -> Console:
    return output.console(highlight=False)


def _summary(changes: Sequence[IndexChange]) -> str:
    counts = Counter(c.action for c in changes)
    adopted = sum(c.adopted for c in changes)
    parts = [f"{counts[a]} {a}" + (f" ({adopted} adopted)" if a == "unchanged" and adopted else "")
             for a in ACTIONS if counts[a]]
    return ", ".join(parts) or "no declared or live indexes"


async def _sharding(database: Database, args: argparse.Namespace) -> ShardingReport | None:
    """The shard keys against our keys, through a mongos (or from --config-db); None on a replica set."""
    config = database.client[args.config_db] if args.config_db else None
    found = await read_shard_config(database, config)
    if found is None:
        return None
    # The stores of this deployment read these by key too, when BACKTEST_STORE_UNCACHED names them.
    named = Settings(uncached_collections=uncached_from_env()).uncached_collections  # checked as a store would
    uncached = UNCACHED | {model for model in DOCUMENTS if model.collection_name() in named}
    return analyse(found, database.name, uncached=uncached)


def print_sharding(report: ShardingReport, console: Console) -> None:
    shards = "" if report.shards is None else f", {plural(report.shards, 'shard')}"
    if report.collections:
        table = Table(title=Text(f"sharding: shard keys from {report.source}{shards}"), title_justify="left")
        for column in ("collection", "shard key", "calls: where mongos sends them"):
            table.add_column(column, no_wrap=column != "calls: where mongos sends them", overflow="fold")
        for sharded in report.collections:
            table.add_row(Text(sharded.collection), Text(sharded.shard_key.text()),
                          Text("; ".join(f"{call.name}: {call.routing}" for call in sharded.calls)))
        console.print(table)
    for finding in report.findings:
        style = "bold red" if finding.severity == ERROR else "yellow"
        where = f"{finding.collection}: " if finding.collection else ""
        console.print(Text(f"sharding {finding.severity}: {where}{finding.message}", style=style))
        if finding.remedy:
            console.print(Text(f"  remedy: {finding.remedy}"))
    if report.error:
        line = report.summary()
    elif not report.collections:
        line = "none of our collections is sharded: each lives on one shard, where every call goes"
    else:
        line = f"{report.summary()}; the others are unsharded: each lives on one shard, where every call goes"
    console.print(Text(f"sharding: {line} (docs/scale-out.md)"))


def print_plan(changes: Sequence[IndexChange], legacy: Sequence[LegacyDocuments], database: str,
               where: str, sharding: ShardingReport | None = None) -> None:
    console = _console()
    table = Table(title=Text(f"indexes of database {database} at {where}"), title_justify="left")
    for column in ("collection", "index", "action", "keys", "reason"):
        table.add_column(column, no_wrap=column != "reason", overflow="fold")
    for change in changes:
        # A conflict shows the declared keys; its reason says what the server has instead.
        spec = change.declared or change.live
        # An adopted index's live name is in its reason, the one column that folds: mongoose's names are long.
        table.add_row(Text(change.collection), Text(change.name),
                      Text(change.action, style=ACTION_STYLES.get(change.action, "")),
                      Text(keys_text(spec, with_options=True)), Text(change.reason))
    console.print(table)
    console.print(Text(_summary(changes)))
    for found in legacy:
        console.print(Text(f"note: {found.describe()} (never blocks apply; see the README)", style="yellow"))
    if sharding is not None:
        print_sharding(sharding, console)


def _in_sync(changes: Sequence[IndexChange], sharding: ShardingReport | None, strict: bool = False) -> bool:
    return not drift(changes, strict=strict) and not (sharding and sharding.errors)


def _plan_json(changes: Sequence[IndexChange], legacy: Sequence[LegacyDocuments], database: str, where: str,
               strict: bool = False, sharding: ShardingReport | None = None) -> dict[str, Any]:
    # `sharding` is null on a replica set or a standalone: there are no shard keys to check.
    return {"database": database, **_where(where), "in_sync": _in_sync(changes, sharding, strict),
            "summary": dict(Counter(c.action for c in changes)), "changes": [c.as_dict() for c in changes],
            "legacy_documents": [found.as_dict() for found in legacy],
            "sharding": None if sharding is None else sharding.as_dict()}


def _where(where: str) -> dict[str, str]:
    # `uri` is a URL a script can use (redacted); `server` says in words which one it is (embedded, data dir).
    return {"uri": url_of(where), "server": where}


def _dump(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


# -- commands ------------------------------------------------------------------------------------------------

def run_plan(args: argparse.Namespace) -> int:
    async def work(database: Database, where: str) -> int:
        changes, legacy = await plan(database), await legacy_documents(database)
        sharding = await _sharding(database, args)
        if args.json:
            _dump(_plan_json(changes, legacy, database.name, where, sharding=sharding))
        else:
            print_plan(changes, legacy, database.name, where, sharding)
        return 0

    return asyncio.run(_with_database(args, work))


def run_check(args: argparse.Namespace) -> int:
    async def work(database: Database, where: str) -> int:
        changes, legacy = await plan(database), await legacy_documents(database)
        sharding = await _sharding(database, args)
        in_sync = _in_sync(changes, sharding, strict=args.strict)
        if args.json:
            _dump(_plan_json(changes, legacy, database.name, where, strict=args.strict, sharding=sharding))
        else:
            print_plan(changes, legacy, database.name, where, sharding)
            verdicts = []
            if drift(changes, strict=args.strict):
                verdicts.append("drift: run `backtest-store migrate plan` / `apply`")
            if sharding and sharding.errors:
                verdicts.append(f"sharding: {plural(len(sharding.errors), 'error')} (shard keys that keep our "
                                "unique indexes or upserts from working; see docs/scale-out.md)")
            _console().print(Text("in sync" if in_sync else "\n".join(verdicts),
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
    print(f"Apply {plural(len(operations), 'change')}? [y/N] ", end="", file=out, flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, EOFError):
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def run_apply(args: argparse.Namespace) -> int:
    async def work(database: Database, where: str) -> int:
        try:
            report = await apply(database, prune=args.prune, hide=args.hide, replace=args.replace,
                                 replace_blocking=args.replace_blocking, confirm=lambda ops: _ask(ops, args))
        except MigrationRefused as exc:
            exc.args = (_options(str(exc)),)
            if args.json:
                _dump({"database": database.name, **_where(where), "refused": str(exc),
                       "conflicts": [c.as_dict() for c in exc.changes],
                       "duplicates": [vars(d) for d in exc.duplicates]})
            raise
        if args.json:
            _dump({"database": database.name, **_where(where), **report.as_dict()})
        else:
            for operation in report.applied:
                print(f"{_past(operation.op)} {operation.collection}.{operation.name} "
                      f"{keys_text(operation.change.declared or operation.change.live, with_options=True)}")
            if report.kept:
                print(f"kept {plural(len(report.kept), 'foreign index', 'foreign indexes')} (not declared, not blocking; `migrate plan` lists "
                      "them, --prune drops them)")
            if report.aborted:
                print("aborted: nothing was changed")
            elif not report.applied:
                print(f"nothing to do: database {database.name} at {where} is "
                      + ("in sync" if not report.kept and not report.blocking else "missing nothing"))
            else:
                print(f"{plural(len(report.applied), 'change')} applied to database {database.name} at {where}")
        if report.blocking and not report.aborted:
            # The safe changes are in; what is left needs the operator's word.
            print(f"backtest-store: refused: {_options(blocking_message(report.blocking))}", file=sys.stderr)
            return 2
        return 1 if report.aborted else 0

    return asyncio.run(_with_database(args, work))


def _past(op: str) -> str:
    return {"create": "created", "drop": "dropped", "hide": "hidden", "replace": "replaced",
            "unhide": "unhidden", "rehide": "hidden"}.get(op, op)
