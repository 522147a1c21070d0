"""HTML tables for notebooks. Every value is escaped: names, values and reasons all come from the database."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th style='text-align:left'>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{esc(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_details(summary: str, content: str, open_: bool = False) -> str:
    return f"<details{' open' if open_ else ''}><summary>{esc(summary)}</summary>{content}</details>"


def html_pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"
