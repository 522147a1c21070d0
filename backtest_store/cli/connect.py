"""How every subcommand reaches its servers: one place for URL resolution, embedded fallback and error wording."""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import ConfigurationError as MongoConfigurationError
from pymongo.errors import PyMongoError, ServerSelectionTimeoutError
from rich.console import Console

from ..config import Settings, check_url, redact
from ..drivers import Client, Database
from ..errors import ConfigurationError, NotReady, StorageError
from ..faults import brief, mongo_fault
from ..migrations import plan
from ..store import Store

ENV_URI = "CC_MONGO_CONNECTION_STRING"
DEFAULT_DATA_DIR = ".backtest-store"


def positive_int(text: str) -> int:
    """An option's value that must be a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_uri_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--uri", help=f"MongoDB URL naming the database (default: ${ENV_URI}, else the embedded "
                                      "servers of --data-dir)")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for MongoDB (default 15)")
    add_data_dir_option(parser)


def add_data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR, metavar="DIR",
                        help=f"the embedded servers' data (default ./{DEFAULT_DATA_DIR}), used when no MongoDB URL "
                             f"is configured: running ones are shared, else they are started for this command")


def configured_uri(args: argparse.Namespace, env: os._Environ[str] | dict[str, str] | None = None) -> str | None:
    """`--uri`, else the environment; None means the embedded servers."""
    env = os.environ if env is None else env
    return getattr(args, "uri", None) or env.get(ENV_URI) or None


@asynccontextmanager
async def target_database(args: argparse.Namespace, appname: str,
                          console: Console | None = None) -> AsyncIterator[tuple[Database, str]]:
    """The database a MongoDB-only command (inspect, migrate) works on, and how to name it to the user: the
    redacted URL, then, for embedded servers, a note in parentheses (`url_of` takes the URL back out).

    With no URL configured it is the embedded one the demo and the dump commands use: the servers running on
    `--data-dir` are shared, otherwise they are started for the length of this command.
    """
    uri = configured_uri(args)
    if uri is not None:
        async with mongo_database(uri, args.timeout, appname) as database:
            yield database, redact(uri)
        return
    from ..embedded import servers_for

    data_dir = Path(args.data_dir).resolve()
    urls, servers = await servers_for(data_dir)
    try:
        where = f"{urls[0]} (embedded, data in {data_dir}{'' if servers is None else ', started for this command'})"
        async with mongo_database(urls[0], args.timeout, appname) as database:
            yield database, where
    finally:
        if servers is not None:
            await servers.astop()


def url_of(where: str) -> str:
    """The redacted URL at the head of `target_database`'s description (a URL holds no unescaped space)."""
    return where.split(" ", 1)[0]


@asynccontextmanager
async def mongo_database(uri: str, timeout: float, appname: str) -> AsyncIterator[Database]:
    """A database handle for MongoDB-only commands (migrate, inspect); driver errors leave here redacted."""
    check_url(uri, "MongoDB", f"--uri or {ENV_URI}")
    where = redact(uri)
    try:
        # timeoutMS as well: serverSelectionTimeoutMS alone leaves a call on a hung connection waiting far beyond
        # it (see Store.from_settings). Long index builds in `migrate` lift it for themselves.
        bound = max(1, int(timeout * 1000))
        client: Client = AsyncMongoClient(uri, tz_aware=True, appname=appname, timeoutMS=bound,
                                          serverSelectionTimeoutMS=bound)
    except (PyMongoError, ValueError, TypeError) as exc:
        # The driver's own words may quote pieces of the URL: only their redacted form is shown.
        raise ConfigurationError(f"invalid MongoDB URL {where}: {brief(exc)}") from None
    try:
        try:
            database = client.get_default_database()
        except MongoConfigurationError:
            raise ConfigurationError(f"the MongoDB URL {where} names no database; append /<database>") from None
        try:
            yield database
        except ServerSelectionTimeoutError:
            raise NotReady(f"MongoDB at {where} did not answer within {timeout:g} s") from None
        except PyMongoError as exc:
            raise StorageError(f"MongoDB at {where}: {mongo_fault(exc)}", mongo_fault(exc)) from None
        except StorageError as exc:
            # Say which server refused; the library's own message never carries the URL.
            raise type(exc)(f"MongoDB at {where}: {exc}", exc.fault) from exc
    finally:
        await client.close()


@asynccontextmanager
async def open_store(data_dir: str | os.PathLike[str] = DEFAULT_DATA_DIR, **options: Any) -> AsyncIterator[Store]:
    """The user's servers when `CC_MONGO_CONNECTION_STRING` is set, else embedded ones keeping data in `data_dir`.
    `options` are `Store.open`'s (`count_commands=True`, ...)."""
    if Settings.configured_in_env():
        store = await Store.open(**options)
        try:
            await store.wait_ready()
            yield store
        finally:
            await store.close()
    else:
        async with Store.embedded(Path(data_dir).resolve(), **options) as store:
            yield store


async def warn_missing_indexes(store: Store, console: Console) -> dict[str, list[str]]:
    """On the user's servers the runtime creates no indexes: say so when `migrate apply` has work to do."""
    missing: dict[str, list[str]] = {}
    blocking: dict[str, list[str]] = {}
    for change in await plan(store.database):
        if change.action in ("create", "conflict"):
            missing.setdefault(change.collection, []).append(change.name)
        elif change.action == "blocking":
            blocking.setdefault(change.collection, []).append(change.name)
    if missing:
        names = ", ".join(f"{c} ({len(ix)})" for c, ix in missing.items())
        console.print(f"[yellow]warning:[/] indexes are missing on {names}. The runtime never creates indexes: "
                      "run [bold]backtest-store migrate apply[/] first (this run goes on without them, slower "
                      "and without the uniqueness guarantees).", highlight=False)
    if blocking:
        names = ", ".join(f"{c}.{ix}" for c, indexes in blocking.items() for ix in indexes)
        console.print(f"[yellow]warning:[/] legacy unique indexes {names} reject some of our writes (E11000): "
                      "run [bold]backtest-store migrate apply --replace-blocking[/] first.", highlight=False)
    return missing
