"""backtest-store: MongoDB + Redis persistence for the 16 backtest-kit contracts."""

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
from .store import Store

__version__ = "0.1.0"

__all__ = ["BacktestStoreError", "ConfigurationError", "InvalidInput", "NotReady", "NotWritten", "OutcomeUnknown",
           "Settings", "StorageError", "Store"]
