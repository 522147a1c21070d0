"""The exceptions callers see. Driver errors are translated here, at the boundary, and never carry credentials."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class BacktestStoreError(Exception):
    """Base class of every error raised by backtest-store."""


class InvalidInput(BacktestStoreError, ValueError):
    """An argument was rejected before any I/O: nothing was written."""


class ConfigurationError(BacktestStoreError):
    """The settings cannot produce a working store (missing URL, bad prefix, missing extra)."""


class NotReady(BacktestStoreError, TimeoutError):
    """A server did not answer within the init timeout."""


class StorageError(BacktestStoreError):
    """MongoDB refused or failed an operation; the original driver error is chained."""


class DumpError(BacktestStoreError):
    """The dump directory cannot be read or written at all (a single bad file is reported, never raised)."""


class MigrationRefused(BacktestStoreError):
    """`apply` would not run: conflicts without `replace`, duplicate keys, or no confirmation. Nothing was changed.

    Blocking indexes without `replace_blocking` do not raise this: see `ApplyReport.blocking`.
    """

    def __init__(self, message: str, changes: Sequence[Any] = (),
                 duplicates: Sequence[Any] = ()) -> None:
        super().__init__(message)
        # The IndexChange and Duplicate records behind the refusal (typed loosely: errors depend on nothing).
        self.changes = list(changes)
        self.duplicates = list(duplicates)
