"""The `serve` command: keep the embedded servers running, so that other tools can reach the same data.

    backtest-store serve [--data-dir DIR]

Starts (or finds already running) the embedded MongoDB wire-protocol server and valkey on 127.0.0.1 with the
data of DIR, prints their URLs, and runs until Ctrl-C. While it runs, every backtest-store command with no
server configured, `Store.local(DIR)` in a notebook, mongosh and redis-cli share those servers.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from ..embedded import STATE_FILE, EmbeddedServers, running
from .connect import add_data_dir_option


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("serve", help="keep the embedded servers running for notebooks, mongosh and redis-cli",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_dir_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_serve(Path(args.data_dir).resolve()))


def _show(data_dir: Path, mongo_url: str, redis_url: str, note: str) -> None:
    print(f"embedded servers {note}, data in {data_dir}\n"
          f"  MongoDB  {mongo_url}\n"
          f"  Redis    {redis_url}\n"
          f"Point other tools at them (their URLs are also in {data_dir / STATE_FILE}):\n"
          f"  export CC_MONGO_CONNECTION_STRING={mongo_url}\n"
          f"  export CC_REDIS_URL={redis_url}\n"
          f"  mongosh {mongo_url}    redis-cli -u {redis_url}", flush=True)


async def _serve(data_dir: Path) -> int:
    urls = await asyncio.to_thread(running, data_dir)
    if urls is not None:
        _show(data_dir, *urls, "already running")
        return 0
    servers = await EmbeddedServers(data_dir).start()
    try:
        _show(data_dir, servers.mongo_url, servers.redis_url, "running")
        print("Ctrl-C stops them.", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await servers.astop()
    print("embedded servers stopped", flush=True)
    return 0
