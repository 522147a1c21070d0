"""Schema inspection, the look-ahead audit, the `inspect` command and the example notebook, on real servers."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime, timezone
from collections.abc import AsyncIterator
from pathlib import Path

import nbformat
import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from backtest_store import Store
from backtest_store.cli import main
from backtest_store.errors import ConfigurationError, InvalidInput
from backtest_store.inspection import audit, schema
from backtest_store.inspection.schema import _database_size, _storage_size
from backtest_store.contracts import DOCUMENTS
from backtest_store.models import MeasureItem, SignalItem
from tests.zoo import T0_MS

from .conftest import ServerUrls, unique

NOTEBOOK = Path(__file__).parent.parent / "examples" / "inspect.ipynb"
SIM = datetime(2026, 1, 1, tzinfo=timezone.utc)
SIM_MS = T0_MS
FUTURE = datetime(2030, 1, 1, tzinfo=timezone.utc)
PAST = datetime(2025, 1, 1, tzinfo=timezone.utc)
EVIL = "<script>alert('x')</script>&[bold]"


async def plant(store: Store, future: int = 1) -> None:
    """One signal, one measure written before the simulation time, `future` written after it."""
    await store.adapters.signal("BTCUSDT", "s", "e").write_signal_data({"id": "1"})
    measure = store.adapters.measure("bucket")
    await measure.write_measure_data({"v": 0}, "k-past", PAST)
    for i in range(future):
        await measure.write_measure_data({"v": i}, f"k-future-{i}", FUTURE.replace(day=1 + i))


async def cli(*argv: str) -> int:
    # The command calls asyncio.run, which needs a thread without a running loop.
    return await asyncio.to_thread(main, list(argv))


# -- schema --------------------------------------------------------------------------------------------------------


async def test_cli_inspects_and_audits_the_dictionary_collection(store: Store,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    book = {"id": "sig-1_marks", "data": {"level": {"value": 1.5, "when": SIM_MS}}, "when": SIM_MS}
    await store.adapters.dictionary("sig-1", "marks").write_dictionary_data(book, FUTURE)
    assert await cli("inspect", "dictionary-items", "--json", "--uri", store.settings.mongo_url) == 0
    (found,) = json.loads(capsys.readouterr().out)["collections"]
    assert (found["document"], found["context_key"], found["count"]) == (
        "DictionaryItem", ["signalId", "dictionaryName"], 1)
    assert {i["name"]: i["action"] for i in found["indexes"]} == {
        "dictionary_context_unique": "unchanged", "dictionary_when": "unchanged"}
    audit_found = (await store.audit(SIM))["dictionary-items"]
    assert audit_found.total == 1 and audit_found.documents[0]["dictionaryName"] == "marks"


async def test_schema_reports_fields_context_key_indexes_and_counts(store: Store) -> None:
    await plant(store)
    report = await store.schema()
    assert [c.name for c in report] == [m.collection_name() for m in DOCUMENTS]

    signal = report["signal-items"]
    assert signal is report["SignalItem"]
    assert signal.document is SignalItem
    assert signal.context_key == ("symbol", "strategyName", "exchangeName")
    fields = {f.name: f for f in signal.fields}
    assert "_id" in fields and "revision_id" not in fields
    assert (fields["symbol"].type, fields["symbol"].required, fields["symbol"].context) == ("str", True, True)
    assert (fields["payload"].type, fields["payload"].context) == ("Any", False)
    assert [(c.name, c.action) for c in signal.indexes] == [("signal_context_unique", "unchanged")]
    assert signal.exists and signal.count == 1
    assert signal.sample["symbol"] == "BTCUSDT" and signal.sample["payload"] == {"id": "1"}
    assert "symbol" in signal.json_schema["properties"]

    measure = report["measure-items"]
    assert measure.document is MeasureItem and measure.count == 2
    assert {f.name: f.type for f in measure.fields}["when"] == "int | None"
    assert {c.action for c in measure.indexes} == {"unchanged"}
    assert report["candle-items"].count == 0 and report["candle-items"].sample is None
    assert {f.name: f.type for f in report["candle-items"].fields}["interval"].startswith("Literal['1m', '3m'")
    # A collection holding documents takes space: never "0 B" (a server without any stats would give None, below).
    assert measure.storage_size is not None and measure.storage_size > 0

    one = await store.schema("measure-items")
    assert [c.name for c in one] == ["measure-items"]


async def test_schema_of_a_fresh_database_shows_indexes_to_create(servers: ServerUrls) -> None:
    client: AsyncMongoClient = AsyncMongoClient(servers.mongo_db(unique("fresh")), tz_aware=True)
    try:
        report = await schema(client.get_default_database(), "signal-items")
        signal = report["signal-items"]
        assert [(c.name, c.action) for c in signal.indexes] == [("signal_context_unique", "create")]
        assert (signal.exists, signal.count, signal.storage_size, signal.sample) == (False, 0, None, None)
        assert "no collection" in report._repr_html_()
    finally:
        await client.close()


async def test_storage_size_is_none_when_the_server_lacks_stats() -> None:
    class NoStats:
        name = "x-items"

        async def aggregate(self, pipeline: list) -> None:
            raise OperationFailure("Unrecognized pipeline stage name: '$collStats'", 40324)

        async def command(self, *args: object) -> None:
            raise OperationFailure("no such command", 59)

    assert await _storage_size(NoStats(), NoStats(), 1) is None  # type: ignore[arg-type]
    assert await _database_size(NoStats()) is None  # type: ignore[arg-type]


async def test_unknown_collection_is_rejected(store: Store) -> None:
    with pytest.raises(InvalidInput, match="unknown collection 'nope'.*signal-items"):
        await store.schema("nope")
    with pytest.raises(InvalidInput, match="stores no `when`"):
        await audit(store.database, SIM, "signal-items")


async def test_html_escapes_stored_values(store: Store) -> None:
    await store.adapters.signal(EVIL, "s", "e").write_signal_data({"note": EVIL})
    await store.adapters.measure(EVIL).write_measure_data({}, EVIL, FUTURE)
    pages = [(await store.schema())._repr_html_(), (await store.schema("signal-items"))["signal-items"]._repr_html_(),
             (await store.audit(SIM))._repr_html_()]
    for page in pages:
        assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;[bold]" in pages[1]
    assert "&lt;script&gt;" in pages[2]


async def test_to_dataframe(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    await plant(store)
    report = await store.schema()
    frame = report.to_dataframe()
    assert len(frame) == len(DOCUMENTS) and set(frame["collection"]) >= {"signal-items", "measure-items"}
    assert frame.set_index("collection").loc["signal-items", "count"] == 1
    fields = report["signal-items"].to_dataframe()
    assert list(fields["name"])[-3:] == ["symbol", "strategyName", "exchangeName"]

    found = await store.audit(SIM)
    rows = found.to_dataframe()
    assert list(rows["entryKey"]) == ["k-future-0"] and list(rows["when"]) == [int(FUTURE.timestamp() * 1000)]
    assert str(rows["when_utc"][0]) == "2030-01-01 00:00:00+00:00"
    counts = found.to_dataframe("counts").set_index("collection")
    assert counts.loc["measure-items", "total"] == 1 and counts.loc["state-items", "total"] == 0

    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ConfigurationError, match=r"backtest-store\[notebook\]"):
        report.to_dataframe()


# -- audit ---------------------------------------------------------------------------------------------------------


async def test_audit_with_datetime_and_epoch_ms(store: Store) -> None:
    await plant(store)
    await store.adapters.state("sig-1", "b").write_state_data({"x": 1}, FUTURE)
    by_datetime, by_ms = await store.audit(SIM), await store.audit(SIM_MS)
    assert by_datetime == by_ms
    assert by_ms.when == SIM_MS and by_ms.total == 2 and not by_ms.clean
    assert "signal-items" not in {f.collection for f in by_ms.findings}  # it stores no `when`
    measure = by_ms["measure-items"]
    assert measure.total == 1 and measure.more == 0
    (doc,) = measure.documents
    assert (doc["bucket"], doc["entryKey"], doc["when"]) == ("bucket", "k-future-0", int(FUTURE.timestamp() * 1000))
    assert "_id" in doc and "payload" not in doc
    assert by_ms["state-items"].documents[0]["signalId"] == "sig-1"

    assert (await store.audit(FUTURE)).total == 0  # strictly later only
    assert (await store.audit(FUTURE.replace(year=2031))).clean
    assert (await audit(store.database, SIM, "measure-items")).total == 1
    with pytest.raises(InvalidInput, match="timezone-aware"):
        await store.audit(datetime(2026, 1, 1))
    with pytest.raises(InvalidInput):
        await store.audit(True)


async def test_audit_listing_says_how_many_more(store: Store) -> None:
    await plant(store, future=3)
    found = await audit(store.database, SIM, limit=2)
    measure = found["measure-items"]
    assert (measure.total, len(measure.documents), measure.more) == (3, 2, 1)
    assert [d["entryKey"] for d in measure.documents] == ["k-future-0", "k-future-1"]  # earliest first
    assert "1 more not listed" in found._repr_html_()
    with pytest.warns(UserWarning, match="not every later document is listed"):
        assert len(found.to_dataframe()) == 2
    counts_only = await audit(store.database, SIM, limit=0)
    assert counts_only["measure-items"].total == 3 and counts_only["measure-items"].more == 3


# -- the `inspect` command -----------------------------------------------------------------------------------------


async def test_cli_json(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    await plant(store)
    assert await cli("inspect", "signal-items", "--json", "--uri", store.settings.mongo_url) == 0
    out = json.loads(capsys.readouterr().out)
    (signal,) = out["collections"]
    assert signal["collection"] == "signal-items" and signal["document"] == "SignalItem"
    assert signal["context_key"] == ["symbol", "strategyName", "exchangeName"]
    assert [i["action"] for i in signal["indexes"]] == ["unchanged"]
    assert signal["count"] == 1 and "$oid" in signal["sample"]["_id"]

    # An audit that finds something exits 1, so scripts can use it as a check.
    assert await cli("inspect", "--audit-when", "2026-01-01T00:00:00Z", "--json",
                     "--uri", store.settings.mongo_url) == 1
    found = json.loads(capsys.readouterr().out)
    assert found["when"] == SIM_MS and found["total"] == 1
    assert await cli("inspect", "--audit-when", str(SIM_MS + 10**12), "--uri", store.settings.mongo_url) == 0


async def test_cli_tables(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    await store.adapters.signal("BTC[bold]USDT", "s", "e").write_signal_data({"id": "1"})
    await plant(store, future=2)
    assert await cli("inspect", "--uri", store.settings.mongo_url) == 0
    out = capsys.readouterr().out
    assert "signal-items" in out and "measure-items" in out and "unchanged" in out
    assert await cli("inspect", "signal-items", "--uri", store.settings.mongo_url) == 0
    assert "BTC[bold]USDT" in capsys.readouterr().out  # stored text is never read as rich markup
    assert await cli("inspect", "--audit-when", "2026-01-01T01:00:00+01:00", "--limit", "1",
                     "--uri", store.settings.mongo_url) == 1
    out = capsys.readouterr().out
    assert "k-future-0" in out and "k-future-1" not in out and "1 more not listed" in out


async def test_cli_rejects_bad_input_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    # Checked before connecting: no server is needed.
    assert await cli("inspect", "nope") == 2
    assert "unknown collection 'nope'" in capsys.readouterr().err
    assert await cli("inspect", "--audit-when", "2026-01-01") == 2
    assert "no timezone" in capsys.readouterr().err
    assert await cli("inspect", "--audit-when", "tomorrow") == 2


async def test_cli_never_prints_the_password(servers: ServerUrls, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # A server that refuses the credentials, and one that does not answer (URL from the environment).
    wrong = servers.mongo_db("db").replace("mongodb://", "mongodb://user:s3cret-pw@")
    assert await cli("inspect", "--uri", wrong, "--timeout", "5") == 2
    monkeypatch.setenv("CC_MONGO_CONNECTION_STRING", "mongodb://user:s3cret-pw@127.0.0.1:1/db")
    assert await cli("inspect", "--timeout", "0.3") == 2
    captured = capsys.readouterr()
    assert "s3cret-pw" not in captured.out + captured.err
    assert "mongodb://user:***@127.0.0.1:1/db did not answer" in captured.err


# -- the example notebook ------------------------------------------------------------------------------------------


@pytest.mark.servers  # the CLI (or Store.local) starts embedded servers of its own
async def test_notebook_runs_headless_with_no_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As a newcomer runs it after the demo: nothing configured, the embedded servers of the data directory."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    for name in ("CC_MONGO_CONNECTION_STRING", "CC_REDIS_URL", "CC_REDIS_HOST", "CC_REDIS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    # The demo's servers, still running: the notebook must find and share them.
    store = await Store.local(tmp_path / "data")
    await plant(store)
    monkeypatch.setenv("BACKTEST_STORE_DATA_DIR", str(tmp_path / "data"))
    # A kernelspec of our own, so the kernel is this venv's python whatever else is installed.
    kernels = tmp_path / "kernels"
    write_kernel_spec(kernels / "backtest-store-test")
    km = AsyncKernelManager(kernel_name="backtest-store-test",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    await NotebookClient(nb, km=km, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).async_execute()

    cells = {cell.id: cell for cell in nb.cells}

    def html(cell_id: str) -> str:
        return next(o["data"]["text/html"] for o in cells[cell_id].outputs if "text/html" in o.get("data", {}))

    def text(cell_id: str) -> str:
        return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cells[cell_id].outputs)

    assert "signal-items" in html("schema") and "measure-items" in html("schema")
    assert "signal_context_unique" in html("schema-one") and "unchanged" in html("schema-one")
    assert "signal-items" in text("dataframe")
    assert "BTCUSDT" in text("signals")
    assert "k-past" in text("measures") and "k-future-0" in text("measures")
    assert "k-future-0" in html("audit") and "k-past" not in html("audit")
    assert text("audit-frame").startswith("1 ['measure-items']")
    await store.close()


async def test_storage_size_comes_from_collstats_stage(store: Store) -> None:
    """`$collStats` (one answer per shard, summed) is used where the server measures; `collStats` is the fallback,
    also when the stage says 0 for a collection that holds documents (SecantusDB's stage does)."""
    collection = store.database["signal-items"]
    await store.adapters.signal("BTCUSDT", "s", "e").write_signal_data({"id": "x"})
    cursor = await collection.aggregate([{"$collStats": {"storageStats": {}}}])
    stage = sum([int(s["storageStats"]["storageSize"]) async for s in cursor])
    command = int((await store.database.command("collStats", "signal-items"))["storageSize"])
    size = await _storage_size(store.database, collection, 1)
    assert size == (stage or command) and size is not None and size > 0


async def test_a_zero_size_for_a_non_empty_collection_falls_back_to_collstats() -> None:
    class ZeroStage:
        name = "x-items"

        async def aggregate(self, pipeline: list) -> AsyncIterator[dict]:
            async def answers() -> AsyncIterator[dict]:
                yield {"storageStats": {"storageSize": 0}}
            return answers()

        async def command(self, *args: object) -> dict:
            return {"storageSize": 1_108_530}

    assert await _storage_size(ZeroStage(), ZeroStage(), 3) == 1_108_530  # type: ignore[arg-type]
    assert await _storage_size(ZeroStage(), ZeroStage(), 0) == 0  # type: ignore[arg-type]
