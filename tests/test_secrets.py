"""Secrets never appear: not in reprs, exception texts, tracebacks, logs at DEBUG, or any CLI output.

Each URL carries secrets in one position and form (a password with unescaped delimiters, a percent-encoded one,
secret query options); every output the library and the CLI produce for it is captured and searched for every
fragment of every secret.
"""

from __future__ import annotations

import logging
import re
import traceback
from pathlib import Path
from urllib.parse import quote

import pytest

from backtest_store import BacktestStoreError, Settings, Store
from backtest_store.cli import main
from tests.zoo import ServerUrls, unique

# Fragments are long and distinct, so that finding one anywhere can only mean a leak.
PASSWORD = "alphaQ7/bravoR8@charlieS9:deltaT0?echoU1#foxtrotV2%"
TOKEN = "sessionTokenW3xyz"
KEY_PASSWORD = "keyPassX4abc"
SECRETS = (PASSWORD, TOKEN, KEY_PASSWORD)


def fragments() -> set[str]:
    found = set()
    for secret in SECRETS:
        found.add(secret)
        found.add(quote(secret, safe=""))
        found.update(p for p in re.split(r"[@/:?#%]", secret) if len(p) >= 4)
    return found


def leaks(text: str) -> list[str]:
    return sorted(f for f in fragments() if f in text)


def urls(servers: ServerUrls) -> list[tuple[str, str]]:
    """(kind, url): MongoDB URLs pointing at the test server (auth fails fast) or malformed, and Redis ones."""
    mongo_host = servers.mongo.split("://", 1)[1].split("/", 1)[0]
    q = quote(PASSWORD, safe="")
    return [
        ("mongo", f"mongodb://user:{PASSWORD}@{mongo_host}/db"),  # unescaped: malformed
        ("mongo", f"mongodb://user:{q}@{mongo_host}/db"),  # well-formed: the server refuses the login
        ("mongo", f"mongodb://user:{q}@{mongo_host.split(':')[0]}:notaport/db"),
        ("mongo", f"mongodb://{mongo_host}/db?tls=true&tlsCertificateKeyFilePassword={KEY_PASSWORD}"),
        ("mongo", f"mongodb://{mongo_host}/db?authMechanism=MONGODB-AWS"
                  f"&authMechanismProperties=AWS_SESSION_TOKEN:{TOKEN}"),
        ("mongo", f"{PASSWORD}@{mongo_host}/db"),  # no scheme at all
        ("redis", f"redis://:{PASSWORD}@127.0.0.1:6379/0"),  # unescaped '/', '@', ':'
        ("redis", f"redis://default:{q}@127.0.0.1:1/0"),  # well-formed, closed port
        ("redis", f"redis://127.0.0.1:1/0?password={q}"),
    ]


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))  # the whole chain: causes and contexts too


async def test_library_outputs_hold_no_secret(servers: ServerUrls, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the drivers' included
    outputs: list[str] = []
    for kind, url in urls(servers):
        options = {"mongo_url": url, "redis_url": servers.redis} if kind == "mongo" else \
            {"mongo_url": servers.mongo_db(unique("secrets")), "redis_url": url}
        try:
            settings = Settings(**options)
            outputs.append(repr(settings))
            store = await Store.open(**options, init_timeout=2.0, cache_prefix=unique("bts"))
            outputs.append(repr(store))
            try:
                await store.wait_ready()
                await store.adapters.signal("B", "s", "e").read_signal_data()
            finally:
                await store.close()
        except BacktestStoreError as exc:
            outputs.append(_describe(exc))
        outputs.append(caplog.text)
        assert not leaks("\n".join(outputs)), (url, leaks("\n".join(outputs)))
    # The cases did reach the errors they are about: refused URLs, refused logins.
    text = "\n".join(outputs)
    assert "percent-encode" in text and "not a number" in text and "must start with" in text


@pytest.mark.parametrize("command", [
    ["inspect", "--timeout", "2"], ["migrate", "plan", "--timeout", "2"], ["migrate", "check", "--timeout", "2"],
])
def test_cli_outputs_hold_no_secret(servers: ServerUrls, command: list[str], capsys: pytest.CaptureFixture[str],
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for kind, url in urls(servers):
        if kind != "mongo":
            continue
        code = main([*command, "--uri", url])
        out, err = capsys.readouterr()
        assert code == 2, (url, out, err)
        assert err.startswith("backtest-store: error:") and "Traceback" not in err and len(err.splitlines()) == 1
        assert not leaks(out + err + caplog.text), (url, out, err)


@pytest.mark.parametrize("command", [["demo", "--minutes", "1", "--json"], ["import-dump", "."], ["export-dump", "x"]])
def test_cli_refuses_malformed_urls_cleanly(servers: ServerUrls, command: list[str], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    for kind, url in urls(servers):
        monkeypatch.setenv("CC_MONGO_CONNECTION_STRING", url if kind == "mongo" else servers.mongo_db(unique("x")))
        monkeypatch.setenv("CC_REDIS_URL", url if kind == "redis" else servers.redis)
        try:
            Settings.from_env()
        except BacktestStoreError:
            pass
        else:
            continue  # well-formed: these commands would wait for the server; covered by the library test
        code = main(command)
        out, err = capsys.readouterr()
        assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1, (url, err)
        assert not leaks(out + err), (url, out, err)


@pytest.mark.parametrize("output", [["--json"], []], ids=["json", "table"])
def test_output_into_a_closed_pipe_ends_quietly(servers: ServerUrls, output: list[str]) -> None:
    """`backtest-store ... | head`: the reader goes away first; it read what it wanted, so the exit code is 0 (not
    rich's 1 or SIGPIPE's 141), and no BrokenPipeError traceback follows."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "backtest_store", "migrate", "plan", *output, "--uri",
                             servers.mongo_db(unique("pipe"))], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the interpreter has even started writing
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
