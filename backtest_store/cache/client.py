"""The Redis client for a URL: `redis.asyncio.Redis` for one server, `redis.asyncio.cluster.RedisCluster` for a
Redis/Valkey Cluster (`redis+cluster://` or `rediss+cluster://`, see `config.CLUSTER_SCHEMES`).

Both get the same bounds: every command times out after `timeout` seconds and is never retried by the driver (a
failure turns the cache off for `cache_retry_after`; see `CacheHealth`). On a cluster the driver still follows
MOVED/ASK redirections and, after a connection error, reloads the slot map on the next command.

Everything the cache sends is a single-key command (redis-om's HSET/HGETALL/DEL on one hash, INFO once), so each
goes to the primary owning its key's slot; the prefix flush scans every primary (`ids.flush_prefix`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ..config import is_cluster_url
from ..drivers import RedisClient

DEFAULT_PORT = 6379
_HOSTS_RE = re.compile(r"(?P<hosts>[^/?#]*)(?P<tail>.*)", re.S)


def connect(url: str, timeout: float) -> RedisClient:
    """A client for `url` (checked by `config.check_url`); no I/O until the first command.

    Raises ValueError or TypeError for options the driver refuses (their texts may quote the URL: redact them).
    """
    options: dict[str, Any] = {"decode_responses": True, "socket_timeout": timeout,
                               "socket_connect_timeout": timeout, "retry": Retry(NoBackoff(), 0)}
    if is_cluster_url(url):
        return cluster(url, **options)
    return Redis.from_url(url, **options)


def cluster(url: str, **options: Any) -> RedisCluster[str]:
    """`redis+cluster://[user:password@]host[:port][,host[:port]…][/0][?option=value…]`: every host is a seed node,
    tried in turn until one answers CLUSTER SLOTS; user, password, TLS and options apply to every node."""
    scheme, rest = url.split("://", 1)
    plain = "rediss" if scheme.lower().startswith("rediss") else "redis"
    at = rest.rfind("@")
    userinfo, rest = (rest[:at + 1], rest[at + 1:]) if at >= 0 else ("", rest)
    match = _HOSTS_RE.match(rest)
    assert match is not None  # the pattern matches any text
    hosts = match["hosts"].split(",")
    seeds = []
    for host in hosts:
        parts = urlsplit(f"//{host}")
        if not parts.hostname:
            raise ValueError("a cluster URL names a seed node without a host")
        seeds.append(ClusterNode(parts.hostname, parts.port or DEFAULT_PORT))
    # redis-py's own parser reads user, password, TLS and options from the URL as if it named the first seed.
    kwargs: dict[str, Any] = dict(parse_url(f"{plain}://{userinfo}{hosts[0]}{match['tail']}"))
    kwargs.pop("host", None)
    kwargs.pop("port", None)
    if kwargs.pop("db", 0) not in (0, None):
        raise ValueError("a Redis Cluster has only database 0")
    if kwargs.pop("connection_class", None) is SSLConnection:
        kwargs["ssl"] = True
    client: RedisCluster[str] = RedisCluster(startup_nodes=seeds, **kwargs, **options)
    return client
