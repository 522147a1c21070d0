"""The exceptions callers see. Driver errors are translated here, at the boundary, and never carry credentials."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fault:
    """What went wrong, in words an operator can act on (`faults.py` words every driver error as one)."""

    reason: str
    detail: str = ""
    # True when retrying before a deadline cannot succeed (refused credentials, a closed port).
    permanent: bool = False

    def __str__(self) -> str:
        if not self.detail or self.detail.lower().rstrip(".") == self.reason.lower():
            return self.reason
        return f"{self.reason} ({self.detail})"


class BacktestStoreError(Exception):
    """Base class of every error raised by backtest-store."""


class InvalidInput(BacktestStoreError, ValueError):
    """An argument was rejected before any I/O: nothing was written."""


class ConfigurationError(BacktestStoreError):
    """The settings cannot produce a working store (missing URL, bad prefix, missing extra)."""


class NotReady(BacktestStoreError, TimeoutError):
    """A server did not answer within the init timeout."""


class StorageError(BacktestStoreError):
    """MongoDB refused or failed an operation; the original driver error is chained.

    `fault` says what went wrong and whether waiting can help (`fault.permanent`). A failed write raises one of the
    two subclasses, which say what became of it: `NotWritten` or `OutcomeUnknown`. A failed read raises this class.
    """

    def __init__(self, message: str, fault: Fault | None = None) -> None:
        super().__init__(message)
        self.fault = fault


class OutcomeUnknown(StorageError):
    """A write timed out or lost its connection: it may have been applied, and may still be applied later.

    That is how MongoDB works: a server that received the write applies it even after the client gave up, for
    example once a frozen server resumes. Every keyed write is an idempotent upsert, so the remedy is to send the
    same write again (or read the key to see what is stored), never to assume that nothing was written.
    """


class NotWritten(StorageError):
    """The server answered and refused the write (a unique index, a validation rule, a permission): it was not
    applied. In a bulk write, what the server refused was not applied; rows it acknowledged before refusing were
    (the message counts them)."""


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
