"""Settings, read from the environment with the TypeScript original's variable names."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TypedDict
from urllib.parse import parse_qs, quote, unquote

from .errors import ConfigurationError

DEFAULT_MONGO_URL = "mongodb://localhost:27017/backtest-kit"
DEFAULT_CACHE_PREFIX = "backtest_store"
# A prefix goes into SCAN patterns, so glob characters must not appear in it.
_PREFIX_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # always fullmatch: `$` would let a final newline through
# Where a URL starts inside any text. A URL ends at the end of its line or where another one starts (after white
# space, a quote, `=`, `(` or `,`): never at a character a password may hold, so no character class decides how
# much of a password is hidden.
_SCHEME_RE = re.compile(r"\b[a-z][a-z0-9+.-]*://", re.I)
_NEXT_URL_RE = re.compile(r"(?<=[\s'\"=(,])[a-z][a-z0-9+.-]*://|\n", re.I)
# Query options that carry secrets: passwords, keys' passwords, tokens (authMechanismProperties may hold
# AWS_SESSION_TOKEN), credentials. The value runs to the next option (`&`, `;`) or the URL's end: a `#` may be
# part of an unescaped password.
_SECRET_OPTION_RE = re.compile(
    r"(?P<name>[?&;][^=&;\s]*(?:pass|secret|token|credential|authmechanismproperties)[^=&;\s]*=)(?P<value>[^&;]*)",
    re.I)
MASK = "***"


def _redact_one(url: str) -> str:
    """One URL without its scheme, from its start to its end (see `_NEXT_URL_RE`)."""
    # The authority's user information ends at the LAST '@': a password holding '@', ':', '/', quotes or anything
    # else is hidden whole (an '@' further on, in the query or in text after the URL, only hides more than needed).
    # Without a ':' the whole user information goes: `redis://secret@host` is a password to some users.
    at = url.rfind("@")
    if at >= 0:
        user, sep, _ = url[:at].partition(":")
        url = (f"{user}:{MASK}" if sep else MASK) + url[at:]
    return _SECRET_OPTION_RE.sub(lambda m: m["name"] + MASK, url)


def redact(text: str) -> str:
    """Hide every password and secret option of every connection string in `text`, wherever it is shown or
    logged: `user:***@host`, `tlsCertificateKeyFilePassword=***`, `authMechanismProperties=***`."""
    out, pos = [], 0
    while (start := _SCHEME_RE.search(text, pos)) is not None:
        end = _NEXT_URL_RE.search(text, start.end())
        stop = len(text) if end is None else end.start()
        out.append(text[pos:start.end()])
        out.append(_redact_one(text[start.end():stop]))
        pos = stop
    out.append(text[pos:])
    return "".join(out)


# `redis+cluster://` and `rediss+cluster://` name a Redis/Valkey Cluster: the hosts are seed nodes, the client finds
# the rest (CLUSTER SLOTS). Not a scheme redis-py knows: `cache.client.connect` takes it apart.
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
_SCHEMES = {"MongoDB": ("mongodb://", "mongodb+srv://"),
            "Redis": ("redis://", "rediss://", "unix://", *CLUSTER_SCHEMES)}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def is_cluster_url(url: str) -> bool:
    return url.lower().startswith(CLUSTER_SCHEMES)


def as_cluster_url(url: str) -> str:
    """The same Redis URL naming a cluster: `redis://` → `redis+cluster://`, `rediss://` → `rediss+cluster://`."""
    if is_cluster_url(url):
        return url
    for plain in ("redis://", "rediss://"):
        if url.lower().startswith(plain):
            return f"{plain[:-3]}+cluster://{url[len(plain):]}"
    raise ConfigurationError("CC_REDIS_CLUSTER: a cluster is reached over TCP; the Redis URL must start with "
                             "redis:// or rediss://")


def check_url(url: object, server: str, where: str) -> str:
    """A connection string a driver can take, else a ConfigurationError saying what is wrong without echoing
    the string (drivers quote pieces of a malformed one, passwords included, in their errors)."""
    def bad(what: str) -> ConfigurationError:
        return ConfigurationError(f"{where}: the {server} URL {what}")

    if type(url) is not str or not url:
        raise bad("is empty or not a string")
    scheme = next((p for p in _SCHEMES[server] if url.lower().startswith(p)), None)
    if scheme is None:
        raise bad(f"must start with {' or '.join(_SCHEMES[server])}")
    if any(c.isspace() for c in url):
        raise bad("contains white space")
    if scheme == "unix://":
        return url
    rest = url[len(scheme):]
    at = rest.rfind("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1:]
        if any(c in userinfo for c in "@/?#") or ":" in userinfo.partition(":")[2]:
            raise bad("has a user name or password with an unescaped '@', ':', '/', '?' or '#': percent-encode it "
                      "(urllib.parse.quote(password, safe=''))")
        if server == "MongoDB" and not _saslprep_ok(userinfo, rest):
            raise bad("has a password that SCRAM-SHA-256 cannot use: SASLprep (RFC 4013) refuses one of its "
                      "characters (a control character, an unassigned code point, some symbols)")
    hosts = rest.split("/", 1)[0].split("?", 1)[0]
    if not hosts:
        raise bad("names no host")
    for host in hosts.split(","):
        name, sep, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if sep and (not port.isdigit() or not 0 < int(port) < 65536):
            raise bad("has a port that is not a number from 1 to 65535")
        if sep and not name:
            raise bad("names no host")
    if scheme == "mongodb+srv://" and ("," in hosts or ":" in hosts.rsplit("]", 1)[-1]):
        raise bad("uses mongodb+srv://, which takes one host name and no port")
    if scheme in CLUSTER_SCHEMES and rest[len(hosts):].split("?", 1)[0].split("#", 1)[0].strip("/") not in ("", "0"):
        raise bad("names a database other than 0; a Redis Cluster has only database 0")
    if "," in hosts and scheme in ("redis://", "rediss://"):
        raise bad(f"names several hosts; for a Redis Cluster write {scheme[:-3]}+cluster://")
    return url


def _saslprep_ok(userinfo: str, rest: str) -> bool:
    """Whether the driver can prepare the password: it runs SASLprep at the first connection, where a refusal was a
    ValueError traceback (SCRAM-SHA-1 and the other mechanisms skip it, so a URL naming one is left alone)."""
    password = unquote(userinfo.partition(":")[2])
    mechanism = parse_qs(rest.partition("?")[2]).get("authMechanism", ["SCRAM-SHA-256"])[-1]
    if not password or mechanism.upper() != "SCRAM-SHA-256":
        return True
    from pymongo.saslprep import saslprep  # here: the console command imports this module before main catches a ^C

    try:
        saslprep(password)
    except ValueError:
        return False
    return True


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


class StoreOptions(TypedDict, total=False):
    """The options `Store.open`, `Store.local` and `Store.embedded` take besides the URLs (see `Settings`)."""

    cache_prefix: str
    flush_cache_on_open: bool
    init_timeout: float
    cache_retry_after: float
    redis_socket_timeout: float
    mongo_timeout_ms: int
    uncached_collections: tuple[str, ...]
    count_commands: bool
    cache_ttl_s: int
    cache_local_entries: int


def uncached_from_env(env: os._Environ[str] | dict[str, str] | None = None) -> tuple[str, ...]:
    """`BACKTEST_STORE_UNCACHED`, comma-separated collection names: `measure-items,interval-items`."""
    env = os.environ if env is None else env
    return tuple(name.strip() for name in env.get("BACKTEST_STORE_UNCACHED", "").split(",") if name.strip())


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
    # PyMongo's timeoutMS: bounds every MongoDB call as a whole (server selection, retries, reply).
    mongo_timeout_ms: int = 15_000
    # Collections whose keyed reads skip the Redis id cache and go by key: on a sharded cluster a read by `_id`
    # goes to every shard, a read by key to one (docs/scale-out.md). Also `BACKTEST_STORE_UNCACHED=a,b`.
    uncached_collections: tuple[str, ...] = ()
    # Count the commands sent to MongoDB and Redis (`Store.stats()`, the demo, the benchmarks). Off by default:
    # PyMongo's command events cost client time on every command (see `counting.py`).
    count_commands: bool = False
    # The Redis level's bound: an entry expires this long after it was last written (a new key, a miss, a repair);
    # 0 keeps entries until evicted. The in-process level holds this many entries per Store, least recent dropped.
    cache_ttl_s: int = 7 * 24 * 3600
    cache_local_entries: int = 10_000

    def __post_init__(self) -> None:
        check_url(self.mongo_url, "MongoDB", "mongo_url (CC_MONGO_CONNECTION_STRING)")
        check_url(self.redis_url, "Redis", "redis_url (CC_REDIS_URL or CC_REDIS_*)")
        if not _PREFIX_RE.fullmatch(self.cache_prefix):
            raise ConfigurationError(
                f"cache_prefix {self.cache_prefix!r} must be 1-64 characters of letters, digits, '_', '.' or '-'"
            )
        if self.init_timeout <= 0:
            raise ConfigurationError("init_timeout must be positive")
        # 0 would mean "no limit" to PyMongo: every call must stay bounded.
        if type(self.mongo_timeout_ms) is not int or self.mongo_timeout_ms <= 0:
            raise ConfigurationError("mongo_timeout_ms must be a positive whole number of milliseconds")
        if type(self.cache_ttl_s) is not int or self.cache_ttl_s < 0:
            raise ConfigurationError("cache_ttl_s must be a whole number of seconds, 0 for none")
        if type(self.cache_local_entries) is not int or self.cache_local_entries < 1:
            raise ConfigurationError("cache_local_entries must be a positive whole number")
        names = self.uncached_collections
        from .models.base import collection_names

        known = collection_names()
        if not isinstance(names, (tuple, list)) or any(name not in known for name in names):
            raise ConfigurationError(f"uncached_collections must name collections among {', '.join(known)}; "
                                     f"got {names!r}")
        object.__setattr__(self, "uncached_collections", tuple(names))

    @classmethod
    def from_env(cls, env: os._Environ[str] | dict[str, str] | None = None, **overrides: object) -> "Settings":
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if env.get("CC_MONGO_CONNECTION_STRING"):
            values["mongo_url"] = env["CC_MONGO_CONNECTION_STRING"]
        redis_url = redis_url_from_env(env)
        if redis_url:
            values["redis_url"] = redis_url
        cluster = (env.get("CC_REDIS_CLUSTER") or "").strip().lower()
        if cluster not in _TRUE | _FALSE:
            raise ConfigurationError(
                f"CC_REDIS_CLUSTER must be 1 or 0 (true/false, yes/no, on/off), got {cluster[:20]!r}")
        if cluster in _TRUE:  # the configured Redis (CC_REDIS_URL, CC_REDIS_*, else the default) is a cluster
            values["redis_url"] = as_cluster_url(str(values.get("redis_url", cls.redis_url)))
        if env.get("BACKTEST_STORE_CACHE_PREFIX"):
            values["cache_prefix"] = env["BACKTEST_STORE_CACHE_PREFIX"]
        if uncached_from_env(env):
            values["uncached_collections"] = uncached_from_env(env)
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
