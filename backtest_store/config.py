"""Settings, read from the environment with the TypeScript original's variable names."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import quote

from .errors import ConfigurationError

DEFAULT_MONGO_URL = "mongodb://localhost:27017/backtest-kit"
DEFAULT_CACHE_PREFIX = "backtest_store"
# A prefix goes into SCAN patterns, so glob characters must not appear in it.
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_CREDENTIALS_RE = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/]*):(?P<password>[^@/]*)@", re.I)


def redact(url: str) -> str:
    """Hide the password of a connection string, wherever it is shown or logged."""
    return _CREDENTIALS_RE.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)


def redis_url_from_env(env: os._Environ[str] | dict[str, str]) -> str | None:
    if env.get("CC_REDIS_URL"):
        return env["CC_REDIS_URL"]
    keys = ("CC_REDIS_HOST", "CC_REDIS_PORT", "CC_REDIS_USER", "CC_REDIS_PASSWORD")
    if not any(env.get(k) for k in keys):
        return None
    host = env.get("CC_REDIS_HOST") or "127.0.0.1"
    port = env.get("CC_REDIS_PORT") or "6379"
    if not port.isdigit():
        raise ConfigurationError(f"CC_REDIS_PORT must be a number, got {port!r}")
    user = env.get("CC_REDIS_USER") or ""
    password = env.get("CC_REDIS_PASSWORD") or ""
    auth = ""
    if password:
        auth = f"{quote(user, safe='')}:{quote(password, safe='')}@"
    elif user:
        auth = f"{quote(user, safe='')}@"
    return f"redis://{auth}{host}:{port}/0"


@dataclass(frozen=True)
class Settings:
    mongo_url: str = DEFAULT_MONGO_URL
    redis_url: str = "redis://127.0.0.1:6379/0"
    cache_prefix: str = DEFAULT_CACHE_PREFIX
    # The original design's "clean slate for every run": drop our cached ids at open.
    flush_cache_on_open: bool = True
    init_timeout: float = 15.0
    # After a Redis failure the cache is bypassed this long, so an outage costs one timeout, not one per call.
    cache_retry_after: float = 1.0
    redis_socket_timeout: float = 1.0
    mongo_timeout_ms: int = 15_000

    def __post_init__(self) -> None:
        if not _PREFIX_RE.match(self.cache_prefix):
            raise ConfigurationError(
                f"cache_prefix {self.cache_prefix!r} must be 1-64 characters of letters, digits, '_', '.' or '-'"
            )
        if self.init_timeout <= 0:
            raise ConfigurationError("init_timeout must be positive")

    @classmethod
    def from_env(cls, env: os._Environ[str] | dict[str, str] | None = None, **overrides: object) -> "Settings":
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if env.get("CC_MONGO_CONNECTION_STRING"):
            values["mongo_url"] = env["CC_MONGO_CONNECTION_STRING"]
        redis_url = redis_url_from_env(env)
        if redis_url:
            values["redis_url"] = redis_url
        if env.get("BACKTEST_STORE_CACHE_PREFIX"):
            values["cache_prefix"] = env["BACKTEST_STORE_CACHE_PREFIX"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @staticmethod
    def configured_in_env(env: os._Environ[str] | dict[str, str] | None = None) -> bool:
        """True when the user pointed us at servers; otherwise the CLI starts embedded ones."""
        env = os.environ if env is None else env
        return bool(env.get("CC_MONGO_CONNECTION_STRING"))

    def __repr__(self) -> str:
        return (
            f"Settings(mongo_url={redact(self.mongo_url)!r}, redis_url={redact(self.redis_url)!r}, "
            f"cache_prefix={self.cache_prefix!r})"
        )
