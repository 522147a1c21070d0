from .ids import CacheHealth, CacheStats, IdCache, flush_prefix
from .keys import encode_key

__all__ = ["CacheHealth", "CacheStats", "IdCache", "encode_key", "flush_prefix"]
