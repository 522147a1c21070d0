"""The `inspect` command: the schema report, or the look-ahead audit, as terminal tables or JSON.

    backtest-store inspect [COLLECTION] [--json] [--uri URI]
    backtest-store inspect [COLLECTION] --audit-when 2026-01-01T00:00:00Z [--limit N] [--json]

Only MongoDB is needed (Redis is not touched). With `--audit-when` the exit code is 1 when some document's
`when` is later than the given time, so scripts can use it as a check; errors exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from datetime import datetime

from rich.console import Console
from rich.json import JSON
from rich.table import Table
from rich.text import Text

from ..errors import InvalidInput
from ..inspection import (
    AUDIT_LIMIT,
    AuditReport,
    SchemaReport,
    audit,
    extended_json,
    find_documents,
    human_size,
    schema,
)
from ..wording import plural
from . import output
from .connect import add_uri_options, target_database


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser(
        "inspect", help="show collections, fields, indexes and counts, or audit stored `when` for look-ahead",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("collection", nargs="?", metavar="COLLECTION", help="one collection, e.g. signal-items")
    add_uri_options(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON (relaxed Extended JSON)")
    parser.add_argument("--audit-when", metavar="TIME",
                        help="audit instead: list documents whose `when` is later than TIME "
                             "(ISO 8601 with a timezone, e.g. 2026-01-01T00:00:00Z, or epoch ms)")
    parser.add_argument("--limit", type=int, default=None,
                        help=f"audit: documents listed per collection (default {AUDIT_LIMIT}; totals are always shown)")
    parser.set_defaults(func=run)


def parse_when(text: str) -> datetime | int:
    if re.fullmatch(r"-?\d+", text.strip()):
        return int(text)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"--audit-when {text!r} is neither ISO 8601 (2026-01-01T00:00:00Z) nor epoch ms") from None
    if value.tzinfo is None:
        raise InvalidInput(f"--audit-when {text!r} has no timezone; add Z or an offset such as +00:00")
    return value


def run(args: argparse.Namespace) -> int:
    # Bad input is reported before connecting, so it fails fast and without a server.
    if args.collection is not None:
        find_documents(args.collection)
    when = parse_when(args.audit_when) if args.audit_when is not None else None
    if args.limit is not None and when is None:
        raise InvalidInput("--limit applies to the audit only: give --audit-when TIME as well")
    args.limit = AUDIT_LIMIT if args.limit is None else args.limit
    where, report = asyncio.run(_report(args, when))
    if args.json:
        print(report.to_json())
    else:
        console = output.console(highlight=False)
        console.print(Text(f"MongoDB {where}", style="dim"))
        if isinstance(report, AuditReport):
            show_audit(console, report)
        else:
            show_schema(console, report, detailed=args.collection is not None)
    return 1 if isinstance(report, AuditReport) and not report.clean else 0


async def _report(args: argparse.Namespace, when: datetime | int | None) -> tuple[str, SchemaReport | AuditReport]:
    async with target_database(args, "backtest-store-inspect") as (database, where):
        if when is None:
            return where, await schema(database, args.collection)
        return where, await audit(database, when, args.collection, limit=args.limit)


def _table(title: str | None, headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    for i, header in enumerate(headers):
        # The first column names the row; let the others wrap instead.
        table.add_column(header, no_wrap=i == 0, overflow="fold")
    for row in rows:
        # Text, not str: rich would read "[...]" in stored values as markup.
        table.add_row(*(Text(str(cell)) for cell in row))
    return table


def show_schema(console: Console, report: SchemaReport, detailed: bool) -> None:
    console.print(Text(f"Database {report.database} (storage {human_size(report.storage_size)})", style="bold"))
    if not detailed:
        # The Document class column is left out to fit 80 columns; `inspect COLLECTION` names it.
        keep = [i for i, h in enumerate(report.SUMMARY_HEADERS) if h != "document"]
        rows = [tuple(row[i] for i in keep) for row in report.summary_rows()]
        console.print(_table(None, tuple(report.SUMMARY_HEADERS[i] for i in keep), rows))
        console.print(Text("Details: backtest-store inspect COLLECTION", style="dim"))
        return
    for c in report:
        count = f"{plural(c.count, 'document')} (estimated)" if c.exists else "no collection"
        console.print(Text(f"{c.name} ({c.document.__name__}): {count}, "
                           f"storage {human_size(c.storage_size)}; context key: {', '.join(c.context_key)}"))
        console.print(_table("Fields", c.FIELD_HEADERS, c.field_rows()))
        console.print(_table("Indexes (declared vs live)", c.INDEX_HEADERS, c.index_rows()))
        console.print(Text("Sample document", style="bold"))
        console.print(JSON(extended_json(c.sample)) if c.sample is not None else Text("none"))
        console.print(Text("JSON Schema: add --json", style="dim"))


def show_audit(console: Console, report: AuditReport) -> None:
    console.print(Text(report.headline(), style="bold" if report.clean else "bold red"))
    console.print(_table(None, report.COUNT_HEADERS, report.count_rows()))
    for finding in report.findings:
        if finding.total:
            console.print(_table(finding.collection, finding.headers(), finding.rows()))
            if finding.more:
                console.print(Text(finding.more_text("use --limit"), style="yellow"))
