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
from backtest_store.errors import ConfigurationError
from backtest_store.cli import main
from tests.zoo import ServerUrls, unique

# Fragments are long and distinct, so that finding one anywhere can only mean a leak.
PASSWORD = "alphaQ7/bravoR8@charlieS9:deltaT0?echoU1#foxtrotV2%"
TOKEN = "sessionTokenW3xyz"
KEY_PASSWORD = "keyPassX4abc"
SECRETS = (PASSWORD, TOKEN, KEY_PASSWORD)


def fragments(secrets: tuple[str, ...] = SECRETS) -> set[str]:
    """Each secret, its percent-encoded form, and every run of 4+ letters and digits in either: a redaction that
    stops at some character shows the run before it or the one after."""
    found = set()
    for secret in secrets:
        for form in (secret, quote(secret, safe="")):
            found.add(form)
            found.update(p for p in re.split(r"[^A-Za-z0-9]", form) if len(p) >= 4)
    return found


def leaks(text: str, secrets: tuple[str, ...] = SECRETS) -> list[str]:
    return sorted(f for f in fragments(secrets) if f in text)


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


# Every printable ASCII character and a few beyond ASCII, each inside a password between two long runs: a redaction
# that decides by character class where a password ends shows one of the runs. White space is refused, never
# echoed. Characters SASLprep prohibits (an emoji, U+2028) are refused by our URL check: PyMongo would raise a
# ValueError of its own at the first connection.
CHARACTERS = [chr(c) for c in range(0x20, 0x7F)] + ["é", "ß", "Ω", "密", "€", "\U0001d11e", "\u00a0", "\u3000",
                                                    "\U0001f600", "\u2028"]


def password_urls(servers: ServerUrls, password: str) -> list[tuple[str, str]]:
    mongo_host = servers.mongo.split("://", 1)[1].split("/", 1)[0]
    return [("mongo", f"mongodb://user:{password}@{mongo_host}/db"),
            ("mongo", f"mongodb://user:{quote(password, safe='')}@{mongo_host}/db"),
            ("redis", f"redis://:{password}@127.0.0.1:1/0"),
            # An unescaped '&' or ';' ends a query option for the driver too: that password is percent-encoded.
            ("redis", f"redis://127.0.0.1:1/0?password={quote(password) if password[7] in '&;' else password}&db=0")]


async def test_every_character_of_a_password_is_hidden(servers: ServerUrls, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    reached = set()
    for character in CHARACTERS:
        password = f"alphaQ7{character}bravoR8"
        outputs: list[str] = []
        for kind, url in password_urls(servers, password):
            options = {"mongo_url": url, "redis_url": servers.redis} if kind == "mongo" else \
                {"mongo_url": servers.mongo_db(unique("secrets")), "redis_url": url}
            try:
                outputs.append(repr(Settings(**options)))
                store = await Store.open(**options, init_timeout=2.0, cache_prefix=unique("bts"),
                                         flush_cache_on_open=False)
                outputs.append(repr(store))
                try:
                    if kind == "mongo":  # a refused login: NotReady names the URL
                        await store.wait_ready()
                finally:
                    await store.close()
            except BacktestStoreError as exc:
                reached.add(type(exc).__name__)
                outputs.append(_describe(exc))
        outputs.append(caplog.text)
        caplog.clear()
        text = "\n".join(outputs)
        assert not leaks(text, (password,)), (character, leaks(text, (password,)), text)
    assert {"ConfigurationError", "NotReady"} <= reached, reached


def test_every_character_of_a_password_is_hidden_by_the_cli(servers: ServerUrls,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    for character in CHARACTERS:
        password = f"alphaQ7{character}bravoR8"
        for kind, url in password_urls(servers, password):
            if kind != "mongo":
                continue
            code = main(["inspect", "--timeout", "2", "--uri", url])
            out, err = capsys.readouterr()
            assert code == 2 and len(err.splitlines()) == 1, (url, err)
            assert not leaks(out + err, (password,)), (character, out, err)


def test_a_cache_prefix_ending_in_a_newline_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="cache_prefix"):
        Settings(cache_prefix="backtest_store\n")
