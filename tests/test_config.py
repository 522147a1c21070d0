"""Settings from the original's environment variables; credentials never shown."""

from __future__ import annotations

import pytest

from backtest_store import ConfigurationError, Settings, Store
from backtest_store.config import check_url, redact


def test_env_names_of_the_original() -> None:
    s = Settings.from_env({"CC_MONGO_CONNECTION_STRING": "mongodb://u:p@h:1/db", "CC_REDIS_HOST": "r",
                           "CC_REDIS_PORT": "7000", "CC_REDIS_USER": "default", "CC_REDIS_PASSWORD": "p@ss:word"})
    assert s.mongo_url == "mongodb://u:p@h:1/db"
    assert s.redis_url == "redis://default:p%40ss%3Aword@r:7000/0"
    assert Settings.from_env({"CC_REDIS_URL": "redis://x:1/2", "CC_REDIS_HOST": "ignored"}).redis_url == "redis://x:1/2"


def test_no_password_default() -> None:
    s = Settings.from_env({})
    assert "@" not in s.redis_url and "@" not in s.mongo_url
    assert Settings.from_env({"CC_REDIS_HOST": "h"}).redis_url == "redis://h:6379/0"


def test_redaction() -> None:
    assert redact("mongodb://admin:hunter2@h1:27017,h2:27017/db?authSource=admin") == \
        "mongodb://admin:***@h1:27017,h2:27017/db?authSource=admin"
    assert redact("redis://default:p%40ss@h:6379/0") == "redis://default:***@h:6379/0"
    s = Settings(mongo_url="mongodb://a:topsecret@h/db", redis_url="redis://:topsecret@h/0")
    assert "topsecret" not in repr(s)


@pytest.mark.parametrize("prefix", ["", "a*b", "x" * 65, "with space", "a:b"])
def test_prefix_must_be_safe_for_scan(prefix: str) -> None:
    with pytest.raises(ConfigurationError):
        Settings(cache_prefix=prefix)


async def test_url_without_database_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        await Store.open(mongo_url="mongodb://user:hidden@127.0.0.1:1", redis_url="redis://127.0.0.1:1/0")
    assert "hidden" not in str(info.value)


async def test_falling_back_to_a_default_says_so_once(monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    for name in ("CC_MONGO_CONNECTION_STRING", "CC_REDIS_URL", "CC_REDIS_HOST", "CC_REDIS_PORT", "CC_REDIS_USER",
                 "CC_REDIS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    store = await Store.open(flush_cache_on_open=False)
    await store.close()
    defaults = [r.getMessage() for r in caplog.records if "using the default" in r.getMessage()]
    assert defaults == ["no MongoDB URL given or configured (CC_MONGO_CONNECTION_STRING): using the default "
                        "mongodb://localhost:27017/backtest-kit",
                        "no Redis URL given or configured (CC_REDIS_URL / CC_REDIS_*): using the default "
                        "redis://127.0.0.1:6379/0"]
    caplog.clear()
    store = await Store.open("mongodb://127.0.0.1:1/db", "redis://127.0.0.1:1/0", flush_cache_on_open=False)
    await store.close()
    assert not [r for r in caplog.records if "using the default" in r.getMessage()]


@pytest.mark.parametrize("value", [0, -1, 1.5])
def test_mongo_timeout_must_bound_every_call(value: object) -> None:
    with pytest.raises(ConfigurationError, match="mongo_timeout_ms"):
        Settings(mongo_timeout_ms=value)  # type: ignore[arg-type]


async def test_a_named_mongodb_without_a_named_redis_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local default Redis is someone else's server once MongoDB is named: opening would flush our prefix
    there. Refused before anything connects."""
    for name in ("CC_REDIS_URL", "CC_REDIS_HOST", "CC_REDIS_PORT", "CC_REDIS_USER", "CC_REDIS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CC_MONGO_CONNECTION_STRING", "mongodb://127.0.0.1:1/db")
    for explicit in ({}, {"mongo_url": "mongodb://127.0.0.1:1/other"}):
        with pytest.raises(ConfigurationError, match="no Redis URL: set CC_REDIS_URL"):
            await Store.open(**explicit)  # type: ignore[arg-type]
    monkeypatch.delenv("CC_MONGO_CONNECTION_STRING")
    with pytest.raises(ConfigurationError, match="no Redis URL"):
        await Store.open(mongo_url="mongodb://127.0.0.1:1/db")
    monkeypatch.setenv("CC_REDIS_PORT", "1")  # Redis named through the original's variables: opened as asked
    store = await Store.open(mongo_url="mongodb://127.0.0.1:1/db", flush_cache_on_open=False)
    assert store.settings.redis_url == "redis://127.0.0.1:1/0"
    await store.close()


@pytest.mark.parametrize("password", ["%F0%9F%98%80", "%E2%80%A8", "\U0001f600"])
def test_a_password_saslprep_refuses_is_a_configuration_error(password: str) -> None:
    """PyMongo runs SASLprep on the password at its first SCRAM-SHA-256 login and raised a bare ValueError there (a
    traceback in every CLI command); the URL check refuses it first, without echoing it."""
    url = f"mongodb://user:{password}@127.0.0.1:27017/db"
    with pytest.raises(ConfigurationError, match="SASLprep") as refused:
        check_url(url, "MongoDB", "mongo_url")
    assert password not in str(refused.value)
    # SCRAM-SHA-1 does not prepare the password: such a URL is the user's to try.
    assert check_url(url + "?authMechanism=SCRAM-SHA-1", "MongoDB", "mongo_url")
