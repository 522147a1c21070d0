"""Time as backtest-kit writes it: epoch milliseconds in documents, ISO 8601 with milliseconds in JSON files."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def epoch_ms(value: datetime) -> int:
    """An aware datetime as epoch milliseconds, exact (no float on the way)."""
    return (value - EPOCH) // timedelta(milliseconds=1)


def ms_to_datetime(ms: int) -> datetime:
    """The inverse of `epoch_ms`: exact, with no float rounding on the way."""
    return EPOCH + timedelta(milliseconds=ms)


def js_iso(value: datetime) -> str:
    """`Date.prototype.toJSON`: UTC, millisecond precision, `Z`, as the framework writes dates to JSON."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)  # BSON dates are UTC; a naive one came from a non-tz-aware client
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
