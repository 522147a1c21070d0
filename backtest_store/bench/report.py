"""The benchmark's results as a terminal table and as `docs/performance.md`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from rich.table import Table

from .calls import BY_KEY, ORIGINAL_LIST_CAP

FLOOR, ORIGINAL, MINIMAL = "floor", "original", "minimal"


def _ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return "—"
    return f"{value / reference:.2f}×"


def _spread(row: dict[str, Any], reference: dict[str, Any], series: str) -> str:
    """min/median/max of the ratios of blocks run side by side (the same block index: the same moment)."""
    mine, theirs = row.get(series), reference.get(series)
    if not mine or not theirs:
        return ""
    ratios = sorted(a / b for a, b in zip(mine, theirs) if b)
    if not ratios:
        return ""
    return f" ({ratios[0]:.2f}/{ratios[len(ratios) // 2]:.2f}/{ratios[-1]:.2f})"


def _ratio_spread(row: dict[str, Any], reference: dict[str, Any], value: str, series: str) -> str:
    text = _ratio(row.get(value), reference.get(value))
    return text if text == "—" else text + _spread(row, reference, series)


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _int(value: Any) -> str:
    return "—" if value is None else f"{value:,}"


def _label(result: dict[str, Any], key: str) -> str:
    v = result["variants"][key]
    return f"({v['letter']}) {v['short']}"


def _why_not(row: dict[str, Any]) -> str:
    return str(row.get("skipped") or f"failed: {row.get('failed', 'no measurement')}")


def call_rows(result: dict[str, Any]) -> Iterator[tuple[str, list[list[str]]]]:
    """Per call and size: one row per design (round trips, CPU and wall per call, and their ratios)."""
    groups: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for row in result.get("calls", []):
        groups.setdefault((row["call"], row["size"]), {})[row["variant"]] = row
    for (call, size), by_variant in groups.items():
        scenario = BY_KEY[call]
        title = f"{scenario.title}, {size:,} {scenario.unit}"
        floor, original = by_variant.get(FLOOR, {}), by_variant.get(ORIGINAL, {})
        minimal = by_variant.get(MINIMAL, {})
        rows = []
        for key in result["variants"]:
            row = by_variant.get(key)
            if row is None:
                continue
            if "cpu_ms" not in row:
                rows.append([_label(result, key)] + ["—"] * (len(CALL_COLUMNS) - 2) + [_why_not(row)])
                continue
            note = ""
            if key == ORIGINAL and call == "measure_list" and size > ORIGINAL_LIST_CAP:
                note = f"returns {ORIGINAL_LIST_CAP:,} (its cap)"
            rows.append([_label(result, key), _int(row["mongo"]), _int(row["redis"]), _num(row["cpu_ms"]),
                         _ratio_spread(row, floor, "cpu_ms", "cpu_blocks_ms"),
                         _ratio_spread(row, minimal, "cpu_ms", "cpu_blocks_ms"),
                         _ratio(row["cpu_ms"], original.get("cpu_ms")),
                         _num(row["wall_ms"], 2), _ratio_spread(row, floor, "wall_ms", "wall_blocks_ms"),
                         _ratio_spread(row, minimal, "wall_ms", "wall_blocks_ms"),
                         _ratio(row["wall_ms"], original.get("wall_ms")),
                         f"{row.get('calls_per_block', '—')} × {row.get('blocks', '—')}",
                         note or f"{row['peak_alloc_kib']:,.0f} KiB"])
        yield title, rows


CALL_COLUMNS = ("design", "MongoDB", "Redis", "CPU ms", "÷ (d)", "÷ (f)", "÷ (c)", "wall ms", "÷ (d)", "÷ (f)",
                "÷ (c)", "calls × blocks", "peak alloc")


def backtest_rows(result: dict[str, Any]) -> list[list[str]]:
    rows_by = {r["variant"]: r for r in result.get("backtest", [])}
    floor, original = rows_by.get(FLOOR, {}), rows_by.get(ORIGINAL, {})
    rows = []
    for key in result["variants"]:
        row = rows_by.get(key)
        if row is None:
            continue
        if "skipped" in row:
            rows.append([_label(result, key)] + ["—"] * 9 + [row["skipped"]])
            continue
        rows.append([_label(result, key), _int(row.get("mongo")), _int(row.get("redis")), _num(row["cpu_s"], 2),
                     _ratio(row["cpu_s"], floor.get("cpu_s")), _ratio(row["cpu_s"], original.get("cpu_s")),
                     _num(row["wall_s"], 2), _ratio(row["wall_s"], floor.get("wall_s")),
                     _ratio(row["wall_s"], original.get("wall_s")), _num(row["peak_rss_mib"], 0),
                     "" if row.get("same_simulation") else "a different simulation!"])
    return rows


# The targets, in this output: client CPU within CPU_TARGET of the floor (d) (LARGE_WRITE_TARGET for a keyed
# write of 10,000 positions, whose cost is the payload's check and encoding); keyed calls within MINIMAL_CPU_TARGET of
# the minimal client's (f) CPU and its wall time (MINIMAL_WALL_TARGET: equal, within the noise of a median block); the
# round trips below.
CPU_TARGET = 1.3
LARGE_WRITE_TARGET = 1.5
MINIMAL_CPU_TARGET = 1.2
MINIMAL_WALL_TARGET = 1.05
SHIPPED = "shipped"


def target_rows(result: dict[str, Any]) -> list[list[str]]:
    """One row per target and measurement of (a): what it is, what was measured, and whether it holds."""
    by = {(r["call"], r["size"], r["variant"]): r for r in result.get("calls", [])}
    rows: list[list[str]] = []

    def add(target: str, measured: str, holds: bool | None) -> None:
        rows.append([target, measured, "—" if holds is None else ("yes" if holds else "**no**")])

    for (call, size, variant), row in by.items():
        if variant != SHIPPED:
            continue
        scenario = BY_KEY[call]
        what = f"{scenario.title}, {size:,} {scenario.unit}"
        floor = by.get((call, size, FLOOR), {})
        limit = LARGE_WRITE_TARGET if call == "keyed_write" and size >= 10_000 else CPU_TARGET
        if "cpu_ms" in row and "cpu_ms" in floor:
            ratio = row["cpu_ms"] / floor["cpu_ms"]
            add(f"client CPU ≤ {limit}× (d): {what}", f"{ratio:.2f}×{_spread(row, floor, 'cpu_blocks_ms')}",
                ratio <= limit)
        elif "cpu_ms" not in row:
            add(f"client CPU ≤ {limit}× (d): {what}", _why_not(row), None)
        minimal = by.get((call, size, MINIMAL), {})
        if call in ("keyed_write", "keyed_read") and "cpu_ms" in row and "cpu_ms" in minimal:
            # (f) checks nothing: a large write's check of its payload is held to the large-write target.
            bound = LARGE_WRITE_TARGET if call == "keyed_write" and size >= 10_000 else MINIMAL_CPU_TARGET
            ratio = row["cpu_ms"] / minimal["cpu_ms"]
            add(f"client CPU ≤ {bound}× (f): {what}",
                f"{ratio:.2f}×{_spread(row, minimal, 'cpu_blocks_ms')}", ratio <= bound)
            ratio = row["wall_ms"] / minimal["wall_ms"]
            add(f"wall time equal to (f) (≤ {MINIMAL_WALL_TARGET}×): {what}",
                f"{ratio:.2f}×{_spread(row, minimal, 'wall_blocks_ms')}", ratio <= MINIMAL_WALL_TARGET)
        if "mongo_names" not in row:
            continue
        mongo, redis = row["mongo_names"], row["redis_names"]
        sent = _names(mongo, redis)
        if call == "keyed_write":
            add(f"1 MongoDB command, no Redis (the key's _id known): {what}", sent,
                mongo == {"findAndModify": 1} and not redis)
        elif call == "keyed_read":
            add(f"1 MongoDB command, no Redis (the key's _id known): {what}", sent, mongo == {"find": 1} and not redis)
        elif call in ("storage_window", "notification_window"):
            add(f"no payload sent, nothing written (reads of the stored digests only): {what}", sent,
                set(mongo) == {"find"} and not redis)
        elif call == "log_window":
            add(f"1 new entry is 1 insert: {what}", sent, mongo == {"insert": 1} and not redis)
        elif call == "measure_list" and size >= 10_000:
            add(f"a list is not one round trip per 1,000 entries: {what}", sent,
                mongo.get("getMore", 0) == 0 and sum(mongo.values()) == 1)
    return rows


def _names(mongo: dict[str, int], redis: dict[str, int]) -> str:
    parts = [f"{n} {name}" for name, n in sorted(mongo.items())]
    parts += [f"{n} Redis {name}" for name, n in sorted(redis.items())]
    return ", ".join(parts) or "nothing"


TARGET_COLUMNS = ("target (backtest-store as shipped)", "measured", "holds")


BACKTEST_COLUMNS = ("design", "MongoDB cmds", "Redis cmds", "CPU s", "÷ (d)", "÷ (c)", "wall s", "÷ (d)", "÷ (c)",
                    "peak RSS MiB", "")


def notes(result: dict[str, Any]) -> list[str]:
    servers = result["servers"]
    out = []
    if servers["embedded_mongo"]:
        out.append(f"MongoDB here is {servers['mongo']}: its wall times are a Python server's, not MongoDB's, and "
                   "it is slow on some query shapes (`$in` lists, quadratic in their length: backtest-store asks for "
                   "1,000 ids per round trip; `findAndModify` on large collections), so the file "
                   "store (e) looks faster than it would against MongoDB. Round trips and client CPU do not depend "
                   "on the server. Set BACKTEST_STORE_BENCH_MONGO_URL to measure against a real MongoDB.")
    out.append("CPU is `time.process_time()` of the benchmark's own process (the servers run in theirs), per call; "
               "the designs take turns in blocks, every design of a row making the same number of calls per block "
               "(\"calls × blocks\"; a design too slow for the budget runs fewer blocks, never fewer calls per "
               "block), with the garbage collector off during every block and a full collection before each. CPU is "
               "a design's lowest block (other work on the machine only adds to it), wall time its median block; "
               "beside each ratio to (d) and (f), in parentheses, the min/median/max of the ratios of the blocks run "
               "side by side. Round trips are counted on a separate connection with command counting on, after one "
               "warm-up call; CPU and wall time on one with it off.")
    out.append("(f) is what a user would write instead of backtest-store: a keyed read is one `find_one` by the unique "
               "key, a keyed write one `findAndModify` by it, with no Redis; its candles and rows are (d)'s. "
               f"\"Equal wall time\" to (f) is read as a median block within {MINIMAL_WALL_TARGET}×.")
    out.append("(d) does backtest-store's round trips with nothing else (its own in-process key → `_id` map over "
               "Redis): no input checks, error translation, timeouts, stale-cache handling or layers. (c) does the TypeScript original's: one MongoDB command and "
               "one Redis command per candle and per row, whole Log windows rewritten, lists capped at 1,000.")
    out.append("\"peak alloc\" is the most Python memory one call had allocated at once (tracemalloc, in the counted "
               "call); peak RSS is the whole process's, running that design's backtest alone.")
    if any("skipped" in r for r in result.get("calls", [])):
        out.append("A size is not run when the previous size of the same call, scaled up, would take longer than "
                   f"{result['options']['max_call_s']:g} s per call.")
    backtest = result.get("backtest")
    if backtest:
        o = result["options"]
        out.append(f"Whole backtest: the demo's call pattern ({o['mode']} mode), {o['symbols']} symbols × "
                   f"{o['minutes']:,} one-minute ticks, seed {o['seed']}, from an empty database (or folder) each, "
                   "once timed and once counted; every design ran the same simulation (the same trades).")
    return out


def render(result: dict[str, Any], console: Console) -> None:
    m, s = result["machine"], result["servers"]
    console.print(f"[bold]backtest-store bench[/]: {m['cpu']}, {m['cores']} cores, Python {m['python']}; "
                  f"{s['mongo']}; {s['redis']}", highlight=False)
    for title, rows in call_rows(result):
        table = Table(title=title, title_justify="left", show_edge=False)
        for i, col in enumerate(CALL_COLUMNS):
            table.add_column(col, justify="left" if i in (0, len(CALL_COLUMNS) - 1) else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    targets = target_rows(result)
    if targets:
        table = Table(title=_targets_title(targets), title_justify="left", show_edge=False)
        for col in TARGET_COLUMNS:
            table.add_column(col)
        for row in targets:
            table.add_row(*(cell.replace("**", "") for cell in row))
        console.print(table)
    if result.get("backtest"):
        table = Table(title="Whole simulated backtest", title_justify="left", show_edge=False)
        for i, col in enumerate(BACKTEST_COLUMNS):
            table.add_column(col, justify="left" if i in (0, len(BACKTEST_COLUMNS) - 1) else "right")
        for row in backtest_rows(result):
            table.add_row(*row)
        console.print(table)
    for note in notes(result):
        console.print(f"- {note}", style="dim", highlight=False)


def _targets_title(rows: list[list[str]]) -> str:
    judged = [r for r in rows if r[2] != "—"]
    held = sum(1 for r in judged if r[2] == "yes")
    return f"Targets: {held} of {len(judged)} hold"


def _md_table(columns: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return out


def markdown(result: dict[str, Any], command: str) -> str:
    m, s = result["machine"], result["servers"]
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Performance",
        "",
        "Generated by `backtest-store bench`; do not edit by hand. To regenerate it, run the command below from the "
        "repository's root.",
        "",
        "```bash",
        command,
        "```",
        "",
        f"- Run: {when}, {result['elapsed_s']:,} s",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['os']}, {m['implementation']} {m['python']}",
        f"- MongoDB: {s['mongo']}",
        f"- Redis: {s['redis']}",
        "",
        "Designs: " + "; ".join(f"({v['letter']}) {v['label']}" for v in result["variants"].values()) + ".",
        "",
    ]
    targets = target_rows(result)
    if targets:
        lines += [f"## {_targets_title(targets)}", "", *_md_table(TARGET_COLUMNS, targets), ""]
    if result.get("calls"):
        lines += ["## Calls", ""]
        for title, rows in call_rows(result):
            lines += [f"### {title}", "", *_md_table(CALL_COLUMNS, rows), ""]
    if result.get("backtest"):
        lines += ["## Whole simulated backtest", "", *_md_table(BACKTEST_COLUMNS, backtest_rows(result)), ""]
    lines += ["## Notes", ""] + [f"- {note}" for note in notes(result)] + [""]
    return "\n".join(lines)
