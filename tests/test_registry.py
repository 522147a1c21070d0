"""The contract registry is complete, and every table derived from it agrees with it. No server needed.

A new contract is a model, an adapter and one registry row (README, "Adding a contract"): each test here names
what is missing when one of them, or a table that should follow them, is not there.
"""

from __future__ import annotations

import inspect
import re
import typing
from pathlib import Path

import pytest

from backtest_store import InvalidInput
from backtest_store.adapters.base import EntryAdapter, RecordAdapter, RowsAdapter, SignalLevels
from backtest_store.adapters.candle import CandleAdapter
from backtest_store.bench.contracts import CONTRACTS as BENCH
from backtest_store.bench.contracts import Factories, Shape
from backtest_store.contracts import BY_MODEL, BY_NAME, CONTRACTS, DOCUMENTS, NAMES, SHAPES, Adapters, Contract
from backtest_store.demo.constants import PERSISTED
from backtest_store.dump.layout import ADAPTER_NAMES, DATA_ROOTS, LAYOUT_CLASSES, LAYOUTS
from backtest_store.migrations.sharding import INSERT_ONLY, KEYLESS, LIST_READS, RECOMMENDED
from backtest_store.models.base import collection_names
from backtest_store.store import UNCACHED

PACKAGE = Path(__file__).parent.parent / "backtest_store"
DOCS = Path(__file__).parent.parent / "docs"
SHAPE_CLASS = {"candle": CandleAdapter, "record": RecordAdapter, "levels": SignalLevels, "rows": RowsAdapter,
               "entries": EntryAdapter}
CONTRACT_METHOD = re.compile(r"^(read|write|remove|list|has)_[a-z]+_data$")

by_name = pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.name)


def snake(field: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", field).lower()


def domain_files(folder: str) -> set[str]:
    return {p.stem for p in (PACKAGE / folder).glob("*.py")} - {"__init__", "base"}


class FakeBackend:
    def repository(self, model: type) -> object:
        return object()

    async def wait_ready(self, timeout: float | None = None) -> None:
        return None


def test_every_model_and_adapter_file_has_one_row() -> None:
    assert len(set(NAMES)) == len(NAMES) and len(set(DOCUMENTS)) == len(DOCUMENTS)
    assert domain_files("models") == set(NAMES), "each models/<name>.py needs its registry row"
    assert domain_files("adapters") == set(NAMES), "each adapters/<name>.py needs its registry row"
    assert sorted(collection_names()) == sorted(m.collection_name() for m in DOCUMENTS)
    assert BY_NAME.keys() == set(NAMES) and BY_MODEL.keys() == set(DOCUMENTS)


@by_name
def test_row_agrees_with_its_adapter_and_model(contract: Contract) -> None:
    adapter, model = contract.adapter, contract.model
    assert adapter.__module__.endswith(f".adapters.{contract.name}")
    assert model.__module__.endswith(f".models.{contract.name}")
    assert contract.shape in SHAPES and issubclass(adapter, SHAPE_CLASS[contract.shape])
    # The constructor takes the registry's fields, in order, named as Python names them.
    params = list(inspect.signature(adapter.__init__).parameters)[2:]
    assert params == [snake(f) for f in contract.fields]
    key = model.context_key()
    assert set(contract.fields) <= set(key)
    if contract.shape in ("record", "levels"):
        assert model.value_field == contract.field
    elif contract.shape == "entries":
        assert adapter.entry_field == contract.field and key[-1] == contract.field  # type: ignore[attr-defined]
    elif contract.shape == "rows":
        assert adapter.row_field == contract.field and contract.field in key  # type: ignore[attr-defined]
        assert adapter.append_only == contract.insert_only  # type: ignore[attr-defined]
    else:
        assert key[-1] == contract.field
    if contract.list_read is not None:
        _, equal, ranged = contract.list_read
        assert set(equal) <= set(key) and (ranged is None or ranged in key)
    if contract.shard_key is not None:
        assert sorted(contract.shard_key) == sorted(key), "a recommended shard key is the whole context key"
    # Every contract method the adapter has, and nothing the framework does not call.
    methods = {n for n in vars(adapter) if CONTRACT_METHOD.match(n)}
    assert methods == set(BENCH[contract.name].methods)


@by_name
def test_factory_builds_the_adapter_and_checks_its_context(contract: Contract) -> None:
    factory = getattr(Adapters(FakeBackend()), contract.name)
    sample = [{"backtest": True, "interval": "1m"}.get(f, "x") for f in contract.fields]
    assert type(factory(*sample)) is contract.adapter
    for index in range(len(sample)):
        bad = [*sample]
        bad[index] = {"$ne": None}
        with pytest.raises(InvalidInput):
            factory(*bad)


def test_the_factories_types_name_the_registrys_adapters() -> None:
    """A user's type checker reads `Adapters`' annotations: one per contract, returning the contract's adapter."""
    hints = typing.get_type_hints(Adapters)
    assert list(hints) == list(NAMES)
    for contract in CONTRACTS:
        assert typing.get_args(hints[contract.name])[-1] is contract.adapter, contract.name


def test_unknown_factory_names_the_contracts() -> None:
    with pytest.raises(AttributeError, match="dictionary"):
        Adapters(FakeBackend()).nonesuch  # noqa: B018


def test_derived_tables_agree() -> None:
    uncached = {c.model for c in CONTRACTS if not c.cached}
    assert UNCACHED == KEYLESS == uncached
    assert INSERT_ONLY == {c.model for c in CONTRACTS if c.insert_only}
    assert LIST_READS == {c.model: c.list_read for c in CONTRACTS if c.list_read}
    assert RECOMMENDED == {c.model: c.shard_key for c in CONTRACTS}
    assert set(BENCH) == set(NAMES)
    assert all(BENCH[c.name].model is c.model and BENCH[c.name].fields == c.fields for c in CONTRACTS)
    factories = Factories(None, {shape: Shape for shape in SHAPES})
    assert all(callable(getattr(factories, name)) for name in NAMES)
    assert sorted(PERSISTED["live"]) == sorted(NAMES)
    assert set(PERSISTED["backtest"]) == {c.name for c in CONTRACTS if not c.live_only}


def test_dump_layouts_agree() -> None:
    assert LAYOUT_CLASSES.keys() <= set(NAMES)
    for name in set(NAMES) - LAYOUT_CLASSES.keys():
        # PlainLayout: the context is the path, so every context field must be a name.
        contract = BY_NAME[name]
        assert contract.shape == "record" and "backtest" not in contract.model.context_key(), (
            f"{name}: its files are not named by its context alone; give it a Layout class in dump/layout.py")
    assert sorted(ADAPTER_NAMES) == sorted(NAMES)
    for layout in LAYOUTS:
        contract = BY_NAME[layout.name]
        assert (layout.model, layout.root, layout.insert_only) == (contract.model, contract.dump,
                                                                 contract.insert_only)
    passes = [BY_NAME[name].dump_pass for name in ADAPTER_NAMES]
    assert passes == sorted(passes)
    assert DATA_ROOTS == {c.dump[0] for c in CONTRACTS}


@by_name
def test_docs_describe_every_contract(contract: Contract) -> None:
    collection = contract.model.collection_name()
    assert f"`{collection}`" in (DOCS / "contracts.md").read_text(), f"docs/contracts.md does not name {collection}"
    root = "/".join(contract.dump)
    assert f"{root}/" in (DOCS / "dump-layout.md").read_text(), f"docs/dump-layout.md does not show {root}/"
