from .ids import CacheHealth, CacheStats, IdCache, LocalIds, flush_prefix
from .keys import encode_key

__all__ = ["CacheHealth", "CacheStats", "IdCache", "LocalIds", "encode_key", "flush_prefix"]
