"""Counting the commands a store sends to MongoDB and Redis, for the demo's summary, the benchmarks and the tests.

Counting is opt-in (`Store.open(count_commands=True)`), because it is not free: with a command listener
registered, PyMongo builds an event for every command it sends and rebuilds each bulk write's command as a
document for the event (about 8% of the client time of a MongoDB command, more for a large bulk write). A store
opened without counting registers no listener and installs no hook, so it pays nothing.

- MongoDB: `CommandCounter`, a PyMongo command listener, counts every command by name as the driver sends it,
  `getMore`s of a cursor and retries included.
- Redis: `RedisCommandCounter` counts, by name, every command the Redis client writes to a connection: the
  cache's own commands, pipelines command by command, and what redis-py sends when it opens a connection
  (`CLIENT SETINFO`, `SELECT`, `AUTH`). These are the commands the server receives, not calls to the cache.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pymongo import monitoring


class CommandCounter(monitoring.CommandListener):
    """Counts the MongoDB commands a client sends, by name (`find`, `getMore`, `findAndModify`, `update`, ...)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.counts[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def total(self) -> int:
        return sum(self.counts.values())


class RedisCommandCounter:
    """Counts the commands a `redis.asyncio` client writes to its connections, by upper-case name.

    `attach(client)` swaps the client's connection class for a subclass whose `pack_command` counts: every
    command redis-py sends, alone or in a pipeline, is packed there exactly once. Connections opened before
    `attach` are not counted, so attach before the first command.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.attached = False

    def attach(self, client: Any) -> bool:
        """Count what `client` sends from now on; False if it has no single connection pool to hook (then
        nothing is counted)."""
        pool = getattr(client, "connection_pool", None)
        base: Any = getattr(pool, "connection_class", None)
        if pool is None or not isinstance(base, type) or not hasattr(base, "pack_command"):
            return False
        counts, original = self.counts, base.pack_command

        def pack_command(conn: Any, *args: Any) -> Any:
            if args:
                name = args[0]
                counts[(name.decode() if isinstance(name, bytes) else str(name)).upper()] += 1
            return original(conn, *args)

        pool.connection_class = type(f"Counting{base.__name__}", (base,), {"pack_command": pack_command})
        self.attached = True
        return True

    def total(self) -> int:
        return sum(self.counts.values())
