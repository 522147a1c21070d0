"""What a driver error means to us: the one place where PyMongo and redis-py errors become our words.

A `Fault` says what went wrong in terms an operator can act on ("authentication failed", "did not answer within
2 s") and whether waiting can help: a wrong password or a closed port stays wrong until someone changes something,
so retrying it until a deadline only delays the answer. Texts never carry credentials and never carry the raw
server reply the drivers append.

Every place that shows a driver error (the repository, the store's readiness probe, `migrate`, `inspect`, the
CLI's connection) words it through here.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure, PyMongoError, WriteConcernError
from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    BusyLoadingError,
    ClusterDownError,
    MovedError,
    NoPermissionError,
    RedisClusterException,
)
from redis.exceptions import TimeoutError as RedisTimeout

from .config import redact
from .errors import BacktestStoreError, Fault, NotWritten, OutcomeUnknown, StorageError

AUTH_FAILED = "authentication failed"
# MongoDB's AuthenticationFailed: the server refused the credentials (not "not authenticated yet", which is 13).
MONGO_AUTH_FAILED = 18
_DETAIL_MAX = 200
# Where the drivers start appending configuration or the raw reply to the message that matters.
_NOISE = (", full error:", " (configured timeouts:", ", Timeout:", ", Topology Description:")


def brief(exc: BaseException) -> str:
    """The driver's message without the configuration and raw server reply it appends, shortened and redacted."""
    if isinstance(exc, OperationFailure):
        text = str((exc.details or {}).get("errmsg") or exc)
    else:
        text = str(exc)
    for marker in _NOISE:
        text = text.split(marker)[0]
    text = redact(text.strip())
    return text if len(text) <= _DETAIL_MAX else text[:_DETAIL_MAX] + "…"


def mongo_fault(exc: BaseException, timeout: float | None = None) -> Fault:
    """`timeout`: the configured bound in seconds, named in the reason when the driver gave up on it."""
    if isinstance(exc, OperationFailure) and exc.code == MONGO_AUTH_FAILED:
        return Fault(AUTH_FAILED, brief(exc), permanent=True)
    if isinstance(exc, TimeoutError) or (isinstance(exc, PyMongoError) and exc.timeout):
        within = f" within {timeout:g} s" if timeout else ""
        return Fault(f"MongoDB did not answer{within}", brief(exc))
    if isinstance(exc, ConnectionFailure):
        # e.g. a retried read whose retry ran out of time reports the first attempt's closed connection.
        return Fault("lost the connection to MongoDB", brief(exc))
    return Fault(type(exc).__name__, brief(exc))


def _caused_by(exc: BaseException, kinds: type[BaseException] | tuple[type[BaseException], ...]) -> bool:
    # redis-py turns the socket's ConnectionRefusedError into its own ConnectionError, and the cluster client wraps a
    # seed node's failure (refused, wrong password) in RedisClusterException: the original is a cause or context.
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, kinds):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _refused(exc: BaseException) -> bool:
    return _caused_by(exc, ConnectionRefusedError)


def redis_fault(exc: BaseException) -> Fault:
    if _caused_by(exc, (AuthenticationError, AuthenticationWrongNumberOfArgsError)):
        return Fault(AUTH_FAILED, brief(exc), permanent=True)
    if isinstance(exc, NoPermissionError):
        return Fault("permission denied", brief(exc), permanent=True)
    if _refused(exc):
        return Fault("connection refused", brief(exc), permanent=True)
    if isinstance(exc, RedisClusterException) and "cluster mode is not enabled" in str(exc).lower():
        return Fault("not a cluster: use redis:// for a single server", brief(exc), permanent=True)
    if isinstance(exc, MovedError):
        return Fault("the server is part of a cluster: use redis+cluster:// (or CC_REDIS_CLUSTER=1)", brief(exc),
                     permanent=True)
    if isinstance(exc, ClusterDownError):
        return Fault("the cluster is down (some slot has no reachable primary)", brief(exc))
    if isinstance(exc, BusyLoadingError):
        return Fault("still loading its data set", brief(exc))
    if isinstance(exc, (TimeoutError, RedisTimeout)):
        return Fault("no answer", brief(exc))
    return Fault(type(exc).__name__, brief(exc))


def outcome_unknown(exc: BaseException) -> bool:
    """True when a failed write may have been applied (or may still be): the client stopped waiting (a timeout) or
    lost the connection before the server's answer, or the server applied it without the asked write concern."""
    if isinstance(exc, BulkWriteError):
        return bool((exc.details or {}).get("writeConcernErrors"))
    return (isinstance(exc, (TimeoutError, ConnectionFailure, WriteConcernError))
            or (isinstance(exc, PyMongoError) and exc.timeout))


def storage_error(action: str, exc: BaseException, timeout: float | None = None, *,
                  write: bool = False) -> StorageError:
    """The exception a failed MongoDB call raises: for a write, `OutcomeUnknown` or `NotWritten` (see errors.py)."""
    fault = mongo_fault(exc, timeout)
    message = f"{action} failed: {fault}"
    if not write:
        return StorageError(message, fault)
    if outcome_unknown(exc):
        return OutcomeUnknown(f"{message}; the write may have been applied, or may still be: "
                              "send it again or read it back", fault)
    if isinstance(exc, BulkWriteError):
        details = exc.details or {}
        applied = sum(details.get(n, 0) for n in ("nInserted", "nUpserted", "nModified"))
        if applied:
            message += f" ({applied} rows were written before or beside the refused ones)"
    return NotWritten(message, fault)


_P = ParamSpec("_P")
_T = TypeVar("_T")


@contextmanager
def translating(action: str, timeout: float | None = None, *, write: bool = False) -> Iterator[None]:
    """The error boundary of a public entry point: a driver error leaves as one of our exceptions, never raw.

    Our own exceptions pass through unchanged. Modelled on advanced-alchemy's `wrap_sqlalchemy_exception`.
    """
    try:
        yield
    except BacktestStoreError:
        raise
    except PyMongoError as exc:
        raise storage_error(action, exc, timeout, write=write) from exc


def translated(action: str, *, write: bool = False) -> Callable[[Callable[_P, Awaitable[_T]]],
                                                              Callable[_P, Awaitable[_T]]]:
    """`translating` as a decorator of a coroutine function."""
    def wrap(call: Callable[_P, Awaitable[_T]]) -> Callable[_P, Awaitable[_T]]:
        @functools.wraps(call)
        async def bounded(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            with translating(action, write=write):
                return await call(*args, **kwargs)
        return bounded
    return wrap


def translated_stream(action: str) -> Callable[[Callable[_P, AsyncIterator[_T]]], Callable[_P, AsyncIterator[_T]]]:
    """`translating` as a decorator of an async generator function (a list read)."""
    def wrap(call: Callable[_P, AsyncIterator[_T]]) -> Callable[_P, AsyncIterator[_T]]:
        @functools.wraps(call)
        async def streamed(*args: _P.args, **kwargs: _P.kwargs) -> AsyncIterator[_T]:
            with translating(action):
                async for item in call(*args, **kwargs):
                    yield item
        return streamed
    return wrap
