"""A static SVG beside each plotly figure, so that a notebook's charts show in a static viewer (GitHub, nbviewer,
an e-mailed .ipynb) where plotly.js does not run.

plotly's own static export (kaleido) drives a Chrome it has to find or download, and takes seconds per first
figure; this draws the traces our figures use (lines, markers, histograms, candlesticks) as plain SVG, with
the title, the axis titles and each axis' range, with no browser and no dependency:

    from backtest_store.analysis.static import static_images
    static_images()      # from now on, every figure a cell shows carries image/svg+xml too
"""

from __future__ import annotations

import base64
import html
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

WIDTH, HEIGHT = 900, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 50
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
RENDERER = "backtest_store_svg"


def _numbers(values: Any) -> tuple[np.ndarray, bool]:
    """Values as floats, and whether they were times (then ns since the epoch)."""
    if values is None:
        return np.array([], dtype="float64"), False
    if isinstance(values, dict) and "bdata" in values:  # plotly's typed-array encoding of a figure dict
        data = np.frombuffer(base64.b64decode(values["bdata"]), dtype=values.get("dtype", "f8"))
        return data.astype("float64"), False
    array = np.asarray(values)
    if array.ndim != 1:
        return np.array([], dtype="float64"), False
    if array.dtype.kind == "M" or (array.dtype.kind in "OU" and len(array) and _is_time(array[0])):
        stamps = pd.to_datetime(pd.Series(array), utc=True).dt.as_unit("ns")
        return stamps.astype("int64").to_numpy(dtype="float64"), True
    try:
        return pd.to_numeric(pd.Series(array), errors="coerce").to_numpy(dtype="float64"), False
    except (TypeError, ValueError):
        return np.arange(len(array), dtype="float64"), False


def _is_time(value: Any) -> bool:
    if isinstance(value, (pd.Timestamp, datetime)):
        return True
    if isinstance(value, str):  # a figure dict carries times as ISO text
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return False
        return True
    return False


def _title(part: Any) -> str | None:
    title = part.get("title") if isinstance(part, dict) else None
    text = title.get("text") if isinstance(title, dict) else title
    return str(text) if text else None


def _label(value: float, times: bool) -> str:
    if times:
        return pd.Timestamp(int(value), tz="UTC").strftime("%Y-%m-%d %H:%M")
    return f"{value:,.4g}"


def _colour(trace: Any, index: int) -> str:
    for part in ("line", "marker"):
        colour = getattr(getattr(trace, part, None), "color", None)
        if isinstance(colour, str):
            return colour
    return PALETTE[index % len(PALETTE)]


def _panes(fig: Any) -> dict[str, tuple[float, float]]:
    """y axis name ('y', 'y2', ...) -> its vertical domain (0 bottom, 1 top)."""
    panes: dict[str, tuple[float, float]] = {}
    layout = fig.layout.to_plotly_json()
    for trace in fig.data:
        name = getattr(trace, "yaxis", None) or "y"
        domain = layout.get("yaxis" + name[1:], {}).get("domain") or (0.0, 1.0)
        panes[name] = (float(domain[0]), float(domain[1]))
    return panes or {"y": (0.0, 1.0)}


def _series(trace: Any) -> list[tuple[np.ndarray, np.ndarray, bool, str]]:
    """(x, y, x-are-times, how) per drawable part of a trace."""
    kind = trace.type
    if kind == "histogram":
        data, _ = _numbers(trace.x)
        data = data[~np.isnan(data)]
        if not len(data):
            return []
        counts, edges = np.histogram(data, bins=min(30, max(1, len(np.unique(data)))))
        return [(edges, np.concatenate([counts, [0]]).astype("float64"), False, "bars")]
    x, times = _numbers(trace.x)
    if kind == "candlestick":
        low, _ = _numbers(trace.low)
        high, _ = _numbers(trace.high)
        close, _ = _numbers(trace.close)
        return [(x, low, times, "range-low"), (x, high, times, "range-high"), (x, close, times, "lines")]
    y, _ = _numbers(trace.y)
    if not len(x) and len(y):
        x = np.arange(len(y), dtype="float64")
    mode = trace.mode or "lines"
    return [(x, y, times, "markers" if "lines" not in mode else "lines")]


def svg(fig: Any, width: int = WIDTH, height: int = HEIGHT) -> str:
    """The figure as one SVG document: traces drawn to scale, title, axis titles and ranges."""
    panes = _panes(fig)
    layout = fig.layout.to_plotly_json()
    parts: list[str] = []
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    by_pane: dict[str, list[tuple[int, Any, list[tuple[np.ndarray, np.ndarray, bool, str]]]]] = {p: [] for p in panes}
    for i, trace in enumerate(fig.data):
        by_pane.setdefault(getattr(trace, "yaxis", None) or "y", []).append((i, trace, _series(trace)))
    xs = [s[0] for traces in by_pane.values() for _, _, series in traces for s in series if len(s[0])]
    x_all = np.concatenate(xs) if xs else np.array([0.0, 1.0])
    x_all = x_all[np.isfinite(x_all)]
    x_lo, x_hi = (float(x_all.min()), float(x_all.max())) if len(x_all) else (0.0, 1.0)
    x_hi = x_hi if x_hi > x_lo else x_lo + 1
    x_times = any(s[2] for traces in by_pane.values() for _, _, series in traces for s in series)

    def px(value: np.ndarray) -> np.ndarray:
        return LEFT + (value - x_lo) / (x_hi - x_lo) * plot_w

    for name, (bottom, top) in panes.items():
        y0, y1 = TOP + (1 - top) * plot_h, TOP + (1 - bottom) * plot_h
        ys = [s[1] for _, _, series in by_pane.get(name, []) for s in series if len(s[1])]
        y_all = np.concatenate(ys) if ys else np.array([0.0, 1.0])
        y_all = y_all[np.isfinite(y_all)]
        y_lo, y_hi = (float(y_all.min()), float(y_all.max())) if len(y_all) else (0.0, 1.0)
        if any(s[3] == "bars" for _, _, series in by_pane.get(name, []) for s in series):
            y_lo = min(y_lo, 0.0)
        y_hi = y_hi if y_hi > y_lo else y_lo + 1

        def py(value: np.ndarray, y0: float = y0, y1: float = y1, lo: float = y_lo, hi: float = y_hi) -> np.ndarray:
            return y1 - (value - lo) / (hi - lo) * (y1 - y0)

        parts.append(f"<rect x='{LEFT}' y='{y0:.1f}' width='{plot_w}' height='{y1 - y0:.1f}' fill='#e5ecf6'/>")
        parts.append(f"<text x='{LEFT - 4}' y='{y0 + 10:.1f}' text-anchor='end'>"
                     f"{html.escape(_label(y_hi, False))}</text>")
        parts.append(f"<text x='{LEFT - 4}' y='{y1:.1f}' text-anchor='end'>{html.escape(_label(y_lo, False))}</text>")
        title = _title(layout.get("yaxis" + name[1:]))
        if title:
            parts.append(f"<text transform='translate(14,{(y0 + y1) / 2:.1f}) rotate(-90)' text-anchor='middle'>"
                         f"{html.escape(str(title))}</text>")
        for index, trace, series in by_pane.get(name, []):
            colour = _colour(trace, index)
            for x, y, _, how in series:
                ok = np.isfinite(x[:len(y)]) & np.isfinite(y[:len(x)])
                x_px, y_px = px(x[:len(y)][ok]), py(y[:len(x)][ok])
                if how == "bars":
                    base = py(np.array([0.0]))[0]
                    for left, right, top_px in zip(x_px[:-1], x_px[1:], y_px[:-1]):
                        parts.append(f"<rect x='{left:.1f}' y='{top_px:.1f}' width='{max(right - left - 1, 0.5):.1f}'"
                                     f" height='{max(base - top_px, 0):.1f}' fill='{colour}'/>")
                elif how == "markers":
                    parts.extend(f"<circle cx='{a:.1f}' cy='{b:.1f}' r='2.5' fill='{colour}'/>"
                                 for a, b in zip(x_px, y_px))
                elif how == "lines" and len(x_px):
                    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x_px, y_px))
                    parts.append(f"<polyline points='{points}' fill='none' stroke='{colour}' stroke-width='1.5'/>")
                elif how == "range-high":
                    low = [s for s in series if s[3] == "range-low"][0][1]
                    low_px = py(low[:len(x)][ok])
                    parts.extend(f"<line x1='{a:.1f}' x2='{a:.1f}' y1='{b:.1f}' y2='{c:.1f}' stroke='#999'/>"
                                 for a, b, c in zip(x_px, y_px, low_px))
    y_bottom = TOP + plot_h
    parts.append(f"<text x='{LEFT}' y='{y_bottom + 16}'>{html.escape(_label(x_lo, x_times))}</text>")
    parts.append(f"<text x='{LEFT + plot_w}' y='{y_bottom + 16}' text-anchor='end'>"
                 f"{html.escape(_label(x_hi, x_times))}</text>")
    x_title = None
    for key in ("xaxis", "xaxis2"):
        x_title = _title(layout.get(key)) or x_title
    if x_title:
        parts.append(f"<text x='{LEFT + plot_w / 2}' y='{height - 8}' text-anchor='middle'>"
                     f"{html.escape(str(x_title))}</text>")
    title = _title(layout)
    legend = "  ".join(f"<tspan fill='{_colour(t, i)}'>■</tspan> {html.escape(str(t.name))}"
                       for i, t in enumerate(fig.data) if t.name)
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}' font-family='sans-serif' font-size='11' fill='#333'>"
            f"<rect width='{width}' height='{height}' fill='white'/>"
            f"<text x='{LEFT}' y='18' font-size='14'>{html.escape(str(title or ''))}</text>"
            f"<text x='{width - RIGHT}' y='18' text-anchor='end'>{legend}</text>"
            + "".join(parts) + "</svg>")


def static_images() -> None:
    """Make every plotly figure a notebook shows carry this SVG beside plotly's own output."""
    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.io.base_renderers import MimetypeRenderer

    class Renderer(MimetypeRenderer):  # type: ignore[misc]
        def to_mimebundle(self, fig_dict: dict[str, Any]) -> dict[str, str]:
            return {"image/svg+xml": svg(go.Figure(fig_dict))}

    pio.renderers[RENDERER] = Renderer()
    if RENDERER not in str(pio.renderers.default):
        pio.renderers.default = f"plotly_mimetype+{RENDERER}"


__all__ = ["RENDERER", "static_images", "svg"]
