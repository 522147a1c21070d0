"""backtest-kit 19.5 itself reads what `export-dump` writes: a real backtest, its dump through MongoDB, a rerun.

`tests/interop/backtest.mjs` runs the framework (Node.js) in backtest mode with its default file persistence.
Run 1 in a fresh directory A writes `A/dump`; it is imported into a fresh database and exported to `B/dump`;
run 2 in B must then fetch nothing from the exchange, compute no cached function again, and produce the same
results, and every file the framework wrote in A must be byte-identical in B.

The framework is found through BACKTEST_KIT_NODE_MODULES (a `node_modules.tar.gz` or an unpacked
`node_modules` folder holding backtest-kit 19.5.0 and its dependencies). When it is unset: the tarball at
`../shared/backtest-kit-19.5/node_modules.tar.gz` next to the repository, else `npm install backtest-kit@19.5.0`
into pytest's cache directory. Nothing found, or no `node`, skips the test with a reason saying how to enable it;
under BACKTEST_STORE_REQUIRE_FRAMEWORK=1 (set by CI) it fails instead, so CI never skips it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tarfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backtest_store import Store
from backtest_store.dump import ExportReport, ImportReport, export_dump, import_dump
from backtest_store.dump.jsonfile import CorruptJson, json_equal, loads
from tests import external

ENV = "BACKTEST_KIT_NODE_MODULES"
VERSION = "19.5.0"
REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "tests" / "interop" / "backtest.mjs"
SIBLING_TARBALL = REPO.parent / "shared" / "backtest-kit-19.5" / "node_modules.tar.gz"
# Generous: a run takes seconds; this only stops a hung process.
NODE_TIMEOUT = 300
NPM_TIMEOUT = 600

# The adapters the script enables and how many files of each run 1 must at least write. Signal, Schedule,
# Strategy, Risk, Partial and Breakeven are never persisted in backtest mode.
MIN_FILES = {"candle": 1000, "storage": 5, "notification": 20, "log": 10, "measure": 20, "interval": 20,
             "memory": 10, "state": 5, "recent": 2, "session": 2}


def adapter_of(rel: str) -> str:
    """The adapter a dump path belongs to (`data/<adapter>/...`, or `memory/`, `state/`, `session/`)."""
    parts = rel.split("/")
    return parts[1] if parts[0] == "data" and len(parts) > 1 else parts[0]


# -- finding the framework (before any server starts: a skip costs nothing) ---------------------------------------------------------------------------------------

def _fail(message: str) -> None:
    pytest.fail(f"{message}\nSet {ENV} to backtest-kit {VERSION}'s node_modules.tar.gz or to an unpacked "
                f"node_modules folder holding backtest-kit and its dependencies.", pytrace=False)


def _checked(node_modules: Path, origin: str) -> Path:
    manifest = node_modules / "backtest-kit" / "package.json"
    if not manifest.is_file():
        _fail(f"{origin}: {node_modules} holds no backtest-kit/package.json")
    version = json.loads(manifest.read_text())["version"]
    if version != VERSION:
        _fail(f"{origin}: {node_modules} holds backtest-kit {version}, this test is written against {VERSION}")
    return node_modules


def _unpack(tarball: Path, dest: Path, origin: str) -> Path:
    try:
        with tarfile.open(tarball) as archive:
            archive.extractall(dest, filter="data")
    except (OSError, tarfile.TarError) as exc:
        _fail(f"{origin}: cannot unpack {tarball}: {exc}")
    # The archive's root folder is `node_modules/`; accept one whose root is the packages themselves too.
    return _checked(dest / "node_modules" if (dest / "node_modules").is_dir() else dest, origin)


def _npm_install(dest: Path) -> Path | None:
    """`npm install backtest-kit@19.5.0` into `dest`; None (with the reason printed) when it fails."""
    node_modules, complete = dest / "node_modules", dest / "install-complete"
    # Only a finished install is reused: an interrupted one can hold backtest-kit without its dependencies.
    if complete.is_file():
        return node_modules
    npm = shutil.which("npm")
    if npm is None:
        print(f"{ENV} fallback: npm is not on PATH")
        return None
    command = [npm, "install", "--prefix", str(dest), "--no-save", "--no-audit", "--no-fund",
               f"backtest-kit@{VERSION}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=NPM_TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"{ENV} fallback: npm install took longer than {NPM_TIMEOUT} s")
        return None
    if done.returncode != 0 or not (node_modules / "backtest-kit" / "package.json").is_file():
        print(f"{ENV} fallback: npm install failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return None
    complete.touch()
    return node_modules


@pytest.fixture(scope="session")
def node() -> str:
    return external.node()


@pytest.fixture(scope="session")
def framework(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unpacked node_modules folder holding backtest-kit 19.5.0; unpacked once per session."""
    configured = os.environ.get(ENV)
    if configured:
        path = Path(configured).expanduser()
        if path.is_dir():
            return _checked(path, ENV)
        if path.is_file():
            return _unpack(path, tmp_path_factory.mktemp("backtest-kit"), ENV)
        _fail(f"{ENV}={configured} is neither a file nor a directory")
    if SIBLING_TARBALL.is_file():
        return _unpack(SIBLING_TARBALL, tmp_path_factory.mktemp("backtest-kit"), str(SIBLING_TARBALL))
    cache = getattr(request.config, "cache", None)  # None under `-p no:cacheprovider`: install for this run only
    installed = _npm_install(cache.mkdir(f"backtest-kit-{VERSION}") if cache is not None
                             else tmp_path_factory.mktemp(f"backtest-kit-{VERSION}"))
    if installed is None:
        external.missing(f"backtest-kit {VERSION} not found: {ENV} is unset, {SIBLING_TARBALL} does not exist and "
                         f"`npm install backtest-kit@{VERSION}` failed (`pytest -s` shows its output)",
                         f"set {ENV} to backtest-kit {VERSION}'s node_modules.tar.gz or to an unpacked node_modules "
                         "folder holding backtest-kit and its dependencies")
    return _checked(installed, "npm install")


# -- the round trip, once for all the tests below ----------------------------------------------------------------

@dataclass
class Run:
    calls: dict[str, int]
    results: list[dict[str, Any]]


@dataclass
class RoundTrip:
    first: Run
    rerun: Run
    written: dict[str, bytes]  # every file under A/dump after run 1, by path relative to the dump
    exported: dict[str, bytes]  # every file under B/dump right after the export, before run 2
    imported: ImportReport
    export: ExportReport
    seconds: dict[str, float]


async def run_framework(node: str, framework: Path, workdir: Path) -> Run:
    command = [node, str(SCRIPT), str(workdir), str(framework)]
    try:
        done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True,
                                       timeout=NODE_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(command)} did not finish within {NODE_TIMEOUT} s")
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        pytest.fail(f"{' '.join(command)} exited with {done.returncode}\nstderr:\n{done.stderr[-4000:]}")
    report = json.loads(lines[-1])
    return Run(report["calls"], report["results"])


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
async def round_trip(node: str, framework: Path, servers, tmp_path_factory: pytest.TempPathFactory) -> RoundTrip:
    a, b = tmp_path_factory.mktemp("run-a"), tmp_path_factory.mktemp("run-b")
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    first = await run_framework(node, framework, a)
    seconds["run 1"] = time.perf_counter() - started
    written = read_tree(a / "dump")

    database = f"interop_{uuid.uuid4().hex[:10]}"
    store = await Store.open(mongo_url=servers.mongo_db(database), redis_url=servers.redis,
                             cache_prefix=f"interop_{uuid.uuid4().hex[:10]}")
    try:
        await store.create_indexes()
        started = time.perf_counter()
        imported = await import_dump(store, a / "dump")
        seconds["import"] = time.perf_counter() - started
        started = time.perf_counter()
        export = await export_dump(store, b / "dump")
        seconds["export"] = time.perf_counter() - started
    finally:
        await store.mongo.drop_database(database)
        await store.flush_cache()
        await store.close()
    exported = read_tree(b / "dump")

    started = time.perf_counter()
    rerun = await run_framework(node, framework, b)
    seconds["run 2"] = time.perf_counter() - started
    return RoundTrip(first, rerun, written, exported, imported, export, seconds)


# -- what must hold --------------------------------------------------------------------------------------------

def test_first_run_exercises_every_backtest_persistence(round_trip: RoundTrip, report: Callable[[str], None]) -> None:
    """Guards against a vacuous pass: the framework really fetched, computed, traded and wrote every adapter."""
    report(f"framework interop: {len(round_trip.written):,} dump files; "
           + ", ".join(f"{step} {s:.1f} s" for step, s in round_trip.seconds.items()))
    calls = round_trip.first.calls
    assert calls["getCandles"] > 0 and calls["measure"] > 0 and calls["interval"] > 0, calls
    # Every way a signal ends, so that Storage rows and notifications of each kind are in the dump.
    ends = Counter(r.get("closeReason", r["action"]) for r in round_trip.first.results)
    assert {"take_profit", "stop_loss", "time_expired", "cancelled"} <= set(ends), ends
    files = Counter(adapter_of(rel) for rel in round_trip.written)
    assert {a: files[a] for a in MIN_FILES if files[a] < MIN_FILES[a]} == {}, files
    assert set(files) <= set(MIN_FILES), f"the framework wrote files of other kinds: {files}"


def test_rerun_on_the_export_fetches_and_computes_nothing(round_trip: RoundTrip) -> None:
    # Every candle, Cache.file value and Interval.file marker of run 1 must come back from the exported dump.
    assert round_trip.rerun.calls == {"getCandles": 0, "candles": 0, "measure": 0, "interval": 0}, (
        f"run 2 on the exported dump called the exchange or cached functions again: {round_trip.rerun.calls}")


def test_rerun_on_the_export_gives_the_same_results(round_trip: RoundTrip) -> None:
    assert round_trip.rerun.results == round_trip.first.results


def test_import_takes_every_file(round_trip: RoundTrip) -> None:
    report = round_trip.imported
    assert report.skipped == 0, "\n".join(f"{path}: {reason}" for path, reason in report.skipped_files)
    assert report.imported == len(round_trip.written), report.as_dict()
    assert round_trip.export.skipped == 0, round_trip.export.skipped_documents


def test_export_is_byte_identical_to_what_the_framework_wrote(round_trip: RoundTrip) -> None:
    written, exported = round_trip.written, round_trip.exported
    skipped = dict(round_trip.imported.skipped_files)
    missing = sorted(set(written) - set(exported))
    differing = sorted(rel for rel in set(written) & set(exported) if written[rel] != exported[rel])
    if not missing and not differing:
        return
    same_values = sum(same_json(written[rel], exported[rel]) for rel in differing)
    lines = [f"{len(missing) + len(differing)} of {len(written)} files the framework wrote are not byte-identical "
             f"in the export ({len(missing)} missing, {len(differing)} differing, of which {same_values} hold the "
             f"same JSON values in another spelling); by adapter: "
             f"{dict(Counter(adapter_of(rel) for rel in missing + differing))}"]
    examples: set[str] = set()
    for rel in differing:
        if adapter_of(rel) not in examples:  # the first difference of the first file of each adapter
            examples.add(adapter_of(rel))
            ours, theirs = excerpt(written[rel], exported[rel])
            lines += [f"  e.g. {rel}", f"    framework: {ours}", f"    export:    {theirs}"]
    for rel in missing:
        lines.append(f"missing:   {rel}" + (f" (import skipped it: {skipped[rel]})" if rel in skipped else ""))
    lines += [f"differing: {rel}" for rel in differing]
    pytest.fail("\n".join(lines), pytrace=False)


def excerpt(a: bytes, b: bytes, width: int = 100) -> tuple[str, str]:
    """Both byte strings around their first difference."""
    at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    start = max(0, at - width // 2)
    return (("…" if start else "") + a[start:at + width].decode(errors="replace"),
            ("…" if start else "") + b[start:at + width].decode(errors="replace"))


def same_json(a: bytes, b: bytes) -> bool:
    try:
        return json_equal(loads(a), loads(b))
    except CorruptJson:
        return False


def test_export_holds_the_same_json_values(round_trip: RoundTrip) -> None:
    """Weaker than byte identity: what `JSON.parse` gives back is the same, whatever the spelling of the numbers."""
    written, exported = round_trip.written, round_trip.exported
    changed = sorted(rel for rel in written if rel not in exported or not same_json(written[rel], exported[rel]))
    assert changed == [], f"{len(changed)} files hold other JSON values after the round trip: {changed}"


def test_export_writes_nothing_the_framework_did_not(round_trip: RoundTrip) -> None:
    extra = sorted(set(round_trip.exported) - set(round_trip.written))
    assert extra == [], f"{len(extra)} exported files the framework never wrote: {extra}"
