"""What some tests need from outside the repository: Node.js, and backtest-kit 19.5.0 with its dependencies.

On a fresh clone these may be missing (the package registry a user reaches may lack one of backtest-kit's
dependencies), so such a test skips, saying how to enable it. CI sets BACKTEST_STORE_REQUIRE_FRAMEWORK=1 (see
`.ci/run`): there a missing requirement fails the test instead, so that it can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

REQUIRE = "BACKTEST_STORE_REQUIRE_FRAMEWORK"


def required() -> bool:
    return os.environ.get(REQUIRE, "") not in ("", "0")


def missing(what: str, how: str) -> NoReturn:
    """Skip (or, under BACKTEST_STORE_REQUIRE_FRAMEWORK=1, fail) because `what` is missing; `how` enables it."""
    if required():
        pytest.fail(f"{what} ({REQUIRE}=1 makes this mandatory). {how}", pytrace=False)
    pytest.skip(f"{what}. To run it: {how} (CI sets {REQUIRE}=1, which turns this skip into a failure)")


def node() -> str:
    """The path of `node`, else a skip (a failure under BACKTEST_STORE_REQUIRE_FRAMEWORK=1)."""
    path = shutil.which("node")
    if path is None:
        missing("node is not on PATH", "install Node.js 20 or newer")
    return path
