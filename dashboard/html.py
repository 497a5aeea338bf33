"""Markup helpers: every value that reaches a page goes through ``e()`` (HTML-escaped), every number through
one formatter, so a model or label named ``<script>`` is shown, never run.

No template engine: the pages are a few tables and forms, and plain functions keep them typed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from html import escape
from typing import Any, Final
from zoneinfo import ZoneInfo

_CENT: Final = Decimal("0.01")


def e(value: object) -> str:
    """``value`` as HTML text (quotes included, so it is safe in an attribute too)."""
    return escape(str(value), quote=True)


def money(value: Decimal) -> str:
    """USD as the page shows it: cents, or four significant places below one cent so small spend is visible."""
    if value == 0 or abs(value) >= _CENT:
        return f"${value.quantize(_CENT):,}"
    return f"${value:.4g}" if abs(value) >= Decimal("1e-4") else f"${value:.2e}"


def count(value: int) -> str:
    return f"{value:,}"


def when(value: datetime | None, tz: str) -> str:
    """A moment in the view's zone, to the minute; an em dash for none."""
    if value is None:
        return "—"
    return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def change(current: Decimal | int, previous: Decimal | int) -> str:
    """The change against the previous period as a signed percentage; "new" when there was nothing before."""
    if previous == 0:
        return "new" if current else "±0 %"
    percent = (Decimal(current) - Decimal(previous)) * 100 / Decimal(previous)
    return f"{percent:+.1f} %"


def table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, test_id: str, empty: str = "nothing in this range"
) -> str:
    """A table of already-escaped cells; ``empty`` (escaped here) when there are no rows."""
    body = "".join(f"<tr>{''.join(f'<td>{cell}</td>' for cell in row)}</tr>" for row in rows)
    if not body:
        return f'<p class="empty" data-test="{e(test_id)}">{e(empty)}</p>'
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    grid = f'<table data-test="{e(test_id)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    return f'<div class="scroll">{grid}</div>'


def json_script(element_id: str, data: Any) -> str:
    """Data for the page's script as a non-executed JSON block; ``<`` escaped so no value can close the tag."""
    text = (
        json.dumps(data, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    )
    return f'<script type="application/json" id="{e(element_id)}">{text}</script>'


def page(title: str, body: str, *, nav: str = "") -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · usagemeter</title>
<link rel="icon" href="/dashboard/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/dashboard/static/uplot.min.css">
<link rel="stylesheet" href="/dashboard/static/dashboard.css">
</head><body><header><strong>usagemeter</strong>{nav}</header><main>{body}</main>
<script src="/dashboard/static/uplot.min.js"></script><script src="/dashboard/static/dashboard.js"></script>
</body></html>"""
