"""The dump's JSON writer against the real thing: `JSON.stringify` in node, on generated floats and strings.

Each Hypothesis example is one batch, checked by one node process (never one process per value).
"""

from __future__ import annotations

import json
import math
import subprocess
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from backtest_store.dump.jsonfile import dumps, loads, to_json
from tests import external


# Reads {"floats": [text...], "strings": [...]} and prints JSON.stringify of each value, one per line (its output
# never holds a raw newline). Floats travel as Python's repr, which JavaScript parses to the same double.
STRINGIFY = r"""
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const special = {nan: NaN, inf: Infinity, "-inf": -Infinity};
const floats = input.floats.map(t => t in special ? special[t] : Number(t));
const out = [...floats, ...input.strings, input.mixed].map(v => JSON.stringify(v));
process.stdout.write(Buffer.from(out.join("\n"), "utf8"));
"""


@pytest.fixture(scope="module")
def node() -> str:
    """A skip before the first example (a failure under BACKTEST_STORE_REQUIRE_FRAMEWORK=1)."""
    return external.node()


def node_stringify(node: str, floats: list[float], strings: list[str], mixed: Any) -> list[bytes]:
    payload = {"floats": [repr(f) for f in floats], "strings": strings, "mixed": mixed}
    # ensure_ascii: a lone surrogate travels as a \udxxx escape, which JSON.parse turns into that UTF-16 unit.
    data = json.dumps(payload, ensure_ascii=True).encode("ascii")
    done = subprocess.run([node, "-e", STRINGIFY], input=data, capture_output=True, check=True, timeout=60)
    lines = done.stdout.split(b"\n")
    assert len(lines) == len(floats) + len(strings) + 1, done.stderr
    return lines


# Magnitudes around the switches between decimal and exponent notation (1e21, 1e-7) and integral values.
scaled = st.builds(lambda m, e: m * 10.0 ** e, st.floats(1, 10, exclude_max=True), st.integers(-30, 30))
integral = st.integers(-(2**60), 2**60).map(float)
floats = st.lists(st.one_of(st.floats(), scaled, integral, st.floats(-1e6, 1e6)), min_size=300, max_size=300)
# Every code point, surrogates included, with the characters JSON.stringify treats specially made frequent.
chars = st.one_of(
    st.characters(exclude_categories=()),
    st.sampled_from(["\u2028", "\u2029", "\x00", "\x08", "\x0b", "\x1f", "\x7f", '"', "\\", "/", "\ud800",
                     "\udbff", "\udc00", "\udfff", "\ud83d", "\ude00", "é", "\U0001f600"]),
)
strings = st.lists(st.text(chars, max_size=12), min_size=150, max_size=150)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(floats, strings)
@example([0.0000124, 1.24e-05, 1e21, 1e20, 1.5e-7, 1e-7, 1e-6, 0.000001, -0.0, 0.0, 100.0, 5e-324,
          1.7976931348623157e308, 2.0**53, 2.0**53 + 2, 123456789012345680000.0, 0.1 + 0.2, math.nan, math.inf,
          -math.inf, -1e-7, 42000.5],
         ["\ud800", "a\udfffb", "\ud83d\ude00", "\ude00\ud83d", "\u2028\u2029", "\x00\x01\x1f\x7f", "\b\f\n\r\t",
          '"\\/', "ретест — 😀"])
def test_dumps_writes_what_json_stringify_writes(node: str, floats: list[float], strings: list[str]) -> None:
    mixed = {"b": floats[:5], "a": strings[:5], "nested": [{"z": None, "y": True, "x": False}, [], {}]}
    expected = node_stringify(node, floats, strings, to_json(mixed))
    ours = [dumps(f) for f in floats] + [dumps(s) for s in strings] + [dumps(to_json(mixed))]
    wrong = [(value, mine, theirs) for value, mine, theirs in zip([*floats, *strings, mixed], ours, expected)
             if mine != theirs]
    assert not wrong, wrong[:5]


def test_key_order_is_kept_as_stored() -> None:
    value = {"z": 1, "a": {"c": 2.5, "b": [3]}, "m": "x"}
    assert dumps(value) == b'{"z":1,"a":{"c":2.5,"b":[3]},"m":"x"}'


def test_numbers_read_as_javascript_reads_them() -> None:
    # JSON.parse gives a double: an integer beyond 2**53 is the nearest one, and prints as JavaScript prints it.
    assert loads(b"[12345678901234567890,100000000000000000000,9007199254740993,42]") == [
        12345678901234567890.0, 1e20, 9007199254740992.0, 42]
    assert dumps(loads(b"[12345678901234567890,100000000000000000000]")) == (
        b"[12345678901234567000,100000000000000000000]")
