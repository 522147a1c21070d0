"""The exceptions callers see. Driver errors are translated here, at the boundary, and never carry credentials."""

from __future__ import annotations


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
