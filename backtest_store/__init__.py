"""backtest-store: MongoDB + Redis persistence for the 17 backtest-kit contracts."""

from typing import TYPE_CHECKING, Any

from .config import Settings
from .errors import (
    BacktestStoreError,
    ConfigurationError,
    InvalidInput,
    NotReady,
    NotWritten,
    OutcomeUnknown,
    StorageError,
)

if TYPE_CHECKING:
    from .store import Store

__version__ = "0.1.0"

__all__ = ["BacktestStoreError", "ConfigurationError", "InvalidInput", "NotReady", "NotWritten", "OutcomeUnknown",
           "Settings", "StorageError", "Store"]


def __getattr__(name: str) -> Any:
    # `Store` brings the drivers (half a second to import): the console command imports this package first and
    # only then can catch a ^C, so the drivers wait until someone asks for them.
    if name == "Store":
        from .store import Store

        return Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
