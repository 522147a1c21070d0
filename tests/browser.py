"""Render a page in headless Chromium and count the colours of the screenshot (no imaging library needed).

Chromium is Debian's `chromium` package at /usr/bin/chromium, or wherever BACKTEST_STORE_CHROMIUM points. A
missing browser fails the test with how to install it: the check it stands for is never skipped.
"""

from __future__ import annotations

import os
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

CHROMIUM_INSTALL = "apt-get update && apt-get install -y chromium"


def chromium() -> str:
    path = os.environ.get("BACKTEST_STORE_CHROMIUM", "/usr/bin/chromium")
    if not os.access(path, os.X_OK):
        pytest.fail(f"headless Chromium is needed to check the HTML report, and {path} is missing: install it "
                    f"with `{CHROMIUM_INSTALL}` (as root), or set BACKTEST_STORE_CHROMIUM to its path")
    return path


def png_pixels(data: bytes) -> tuple[int, int, int, bytes]:
    """(width, height, channels, pixels): a minimal decoder for 8-bit RGB/RGBA, non-interlaced PNGs."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, bytearray(), None
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None, "no IHDR chunk"
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, f"unsupported PNG {header}"
    channels = 3 if color == 2 else 4
    stride = width * channels
    raw = zlib.decompress(bytes(idat))
    out = bytearray(height * stride)
    prev = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:  # Sub
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif kind == 2:  # Up
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b, c = prev[i], (prev[i - channels] if i >= channels else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return width, height, channels, bytes(out)


def screenshot_colours(page: Path, tmp_path: Path, size: tuple[int, int]) -> Counter[bytes]:
    """Screenshot `page` offline at `size` and count its pixels by RGB value."""
    png = tmp_path / "screenshot.png"
    # --virtual-time-budget: the screenshot waits until the page's scripts have run, however slow the machine.
    subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'chromium-profile'}", f"--screenshot={png}",
                    f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=10000", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    width, height, channels, pixels = png_pixels(png.read_bytes())
    assert (width, height) == size
    return Counter(pixels[i:i + 3] for i in range(0, len(pixels), channels))


# Run in the page once it has loaded: every element whose content is wider than its box (a table cut off by its
# scrolling wrapper, the page itself scrolling sideways), written into the DOM for --dump-dom to print.
_OVERFLOW_PROBE = """<script>addEventListener('load', () => setTimeout(() => {
  const found = [];
  const page = document.documentElement;
  if (page.scrollWidth > page.clientWidth + 1) found.push(`page ${page.scrollWidth} > ${page.clientWidth}`);
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('.plotly, .js-plotly-plot, svg')) continue;  // plotly sizes its own layers
    if (el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0 && getComputedStyle(el).overflowX !== 'visible')
      found.push(`${el.tagName.toLowerCase()}.${el.className} ${el.scrollWidth} > ${el.clientWidth}`);
    const box = el.getBoundingClientRect();
    if (el.tagName === 'TABLE' && box.right > page.clientWidth + 1)
      found.push(`table ends at ${Math.round(box.right)} > ${page.clientWidth}`);
  }
  const out = document.createElement('pre');
  out.id = 'overflow-report';
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
}, 0));</script>"""


def overflowing(page: Path, tmp_path: Path, width: int, height: int = 900) -> list[str]:
    """What overflows sideways when `page` is shown in a `width` px window (empty when everything fits)."""
    import json
    import re

    probed = tmp_path / f"probed-{width}.html"
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", _OVERFLOW_PROBE + "</body>", 1),
                      encoding="utf-8")
    done = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                           "--no-first-run", "--disable-background-networking", "--disable-component-update",
                           "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}", "--dump-dom",
                           f"--window-size={width},{height}", "--virtual-time-budget=10000", probed.as_uri()],
                          check=True, capture_output=True, timeout=120, text=True)
    found = re.search(r'<pre id="overflow-report">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the probe did not run: {done.stdout[-500:]}"
    return list(json.loads(html_unescape(found[1])))


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)
