"""The pages: the overview (spend, budgets, errors, freshness) and the prices, as HTML strings.

Each shown number also sits, exact, in a ``data-value`` attribute next to its rounded text, so a test (or
a reader's script) can compare it with the API's answer without parsing formatted money.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Final

from clickhouse_connect.driver.client import Client

from usagemeter.dashboard.html import change, count, e, json_script, money, page, table, when
from usagemeter.dashboard.overview import NO_DEAD_LETTERS, DeadLetters, Overview, Panel, overview
from usagemeter.dashboard.view import FILTER_FIELDS, RANGES, PriceView, Scope, View
from usagemeter.pricing.columns import BOOK_END, BOOK_START
from usagemeter.query.answer import OTHER, Measures, UsageAnswer
from usagemeter.query.price_book import book_in_force, book_versions, contracts_in_force

_KINDS: Final = (
    ("input", "input (uncached)"),
    ("cache_read", "cached input (read)"),
    ("cache_write", "cache write"),
    ("output", "output"),
    ("reasoning", "reasoning"),
    ("audio", "audio"),
    ("web_search", "web search"),
    ("request", "per request"),
)


def nav(scope: Scope, view: View | None = None) -> str:
    query = view.url("").lstrip() if view else ""
    who = "admin" if scope.admin else ", ".join(sorted(scope.clients))
    return (
        f'<nav><a href="/dashboard{e(query)}">Overview</a><a href="/dashboard/prices">Prices</a>'
        f'<span class="who">key: {e(who)}</span><a href="/dashboard/logout">Log out</a></nav>'
    )


def render_overview(
    client: Client, view: View, scope: Scope, now: datetime, letters: DeadLetters = NO_DEAD_LETTERS
) -> str:
    """The overview page of ``view`` as ``scope`` may see it (``PermissionError`` for a client outside it)."""
    ov = overview(client, view, scope, now, letters)
    body = "".join(
        (
            _filters(ov),
            _freshness(ov),
            _totals(ov),
            '<div class="grid">',
            _chart("Spend by model", "chart-model", ov.by_model, "model", view),
            _chart("Spend by provider", "chart-provider", ov.by_provider, "provider", view),
            _top("Top users by cost", "top-users", ov.top_users, "user"),
            _top("Top models by cost", "top-models", ov.top_models, "model"),
            _kinds(ov.total),
            _errors(ov),
            "</div>",
            _budgets(ov),
            _store_panels(ov),
        )
    )
    return page("Dashboard", body, nav=nav(scope, view))


def _filters(ov: Overview) -> str:
    view = ov.view
    options = "".join(
        f'<option value="{e(c)}"{" selected" if c == view.client else ""}>{e(c)}</option>' for c in ov.choices
    )
    ranges = "".join(f'<option value="{r}"{" selected" if r == view.range else ""}>last {r}</option>' for r in RANGES)
    known = _known_values(ov)
    fields = "".join(
        f'<label>{name}<input name="{name}" value="{e(getattr(view, name))}" list="known-{name}"></label>'
        f"{_datalist(f'known-{name}', known[name])}"
        for name in FILTER_FIELDS
    )
    return f"""<form class="filters" method="get" action="/dashboard" data-test="filters">
<label>client<select name="client"><option value="">all ({len(ov.choices)})</option>{options}</select></label>
<label>range<select name="range">{ranges}</select></label>
<label>zone<input name="tz" value="{e(view.tz)}"></label>{fields}
<label>label<input name="label" value="{e(view.label)}" placeholder="key=value"></label>
<button type="submit">Apply</button></form>
<p class="range" data-test="range" data-start="{e(ov.start.isoformat())}"
 data-end="{e(ov.end.isoformat())}">{e(when(ov.start, view.tz))} &ndash; {e(when(ov.end, view.tz))} ({e(view.tz)}),
buckets of one {e(view.bucket)}; clients: <span data-test="clients">{e(", ".join(ov.clients) or "none")}</span></p>"""


def _datalist(element_id: str, values: list[str]) -> str:
    options = "".join(f'<option value="{e(v)}">' for v in values)
    return f'<datalist id="{e(element_id)}">{options}</datalist>'


def _known_values(ov: Overview) -> dict[str, list[str]]:
    """Suggestions for the filter fields: the values the range's panels hold (the top ones, not every one)."""
    sources = {"provider": ov.by_provider, "model": ov.by_model, "user": ov.top_users, "service": ov.errors}
    known: dict[str, list[str]] = {}
    for name, panel in sources.items():
        rows = panel.answer.rows if panel.answer else []
        known[name] = sorted({v for row in rows if (v := row.group.get(name, "")) and v != OTHER})
    return known


def _freshness(ov: Overview) -> str:
    fresh = ov.freshness
    as_of = when(fresh.as_of, ov.view.tz) if fresh else "—"
    late = fresh.late_events if fresh else 0
    unpriced = ov.total.unpriced
    return (
        f'<p class="fresh">Complete up to <strong data-test="as-of">{e(as_of)}</strong>'
        f' · late events in range: <span data-test="late">{count(late)}</span>'
        f' · unpriced events: <span data-test="unpriced" data-value="{unpriced}">{count(unpriced)}</span></p>'
    )


def _totals(ov: Overview) -> str:
    if ov.current.answer is None:
        return f'<p class="note">{e(ov.current.note)}</p>'
    now, before = ov.current.answer.total, (ov.previous.answer.total if ov.previous.answer else Measures())
    cards = (
        ("cost", "Cost", money(now.cost.total), now.cost.total, before.cost.total, money(before.cost.total)),
        ("requests", "Requests", count(now.requests), now.requests, before.requests, count(before.requests)),
        (
            "tokens",
            "Tokens",
            count(now.tokens.total),
            now.tokens.total,
            before.tokens.total,
            count(before.tokens.total),
        ),
        ("errors", "Errors", count(now.errors), now.errors, before.errors, count(before.errors)),
    )
    html = "".join(
        f'<div class="card"><span>{label}</span><strong data-test="total-{key}" data-value="{value}">{shown}</strong>'
        f'<small>previous period <span data-test="previous-{key}" data-value="{prev}">{prev_shown}</span> · '
        f"{e(change(value, prev))}</small></div>"
        for key, label, shown, value, prev, prev_shown in cards
    )
    return f'<section class="cards">{html}</section>'


def _chart(title: str, element: str, panel: Panel, dimension: str, view: View) -> str:
    if panel.answer is None:
        return f'<section><h2>{e(title)}</h2><p class="note">{e(panel.note)}</p></section>'
    data = _series(panel.answer, dimension)
    rows = [
        (e(name), f'<span data-value="{total}">{money(total)}</span>')
        for name, total in sorted(_group_totals(panel.answer, dimension).items(), key=lambda kv: -kv[1])
    ]
    return f"""<section><h2>{e(title)}</h2>
<div class="chart" data-chart="{e(element)}" data-tz="{e(view.tz)}" data-bucket="{e(view.bucket)}"></div>
{json_script(element, data)}
<details><summary>numbers</summary>{table([dimension, "cost"], rows, test_id=element + "-table")}</details></section>"""


def _series(answer: UsageAnswer, dimension: str) -> dict[str, object]:
    """Bucket starts (epoch seconds) and, per group, the cost of each bucket (zero where it had none)."""
    starts = sorted({row.start for row in answer.rows if row.start is not None})
    index = {start: i for i, start in enumerate(starts)}
    groups: dict[str, list[float]] = {}
    for row in answer.rows:
        if row.start is None:
            continue
        values = groups.setdefault(row.group[dimension], [0.0] * len(starts))
        values[index[row.start]] += float(row.cost.total)
    ordered = sorted(groups.items(), key=lambda kv: -sum(kv[1]))
    series = [{"label": k or "(none)", "values": v} for k, v in ordered]
    return {"x": [int(s.timestamp()) for s in starts], "series": series}


def _group_totals(answer: UsageAnswer, dimension: str) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for row in answer.rows:
        key = row.group[dimension]
        totals[key] = totals.get(key, Decimal(0)) + row.cost.total
    return totals


def _top(title: str, test_id: str, panel: Panel, dimension: str) -> str:
    if panel.answer is None:
        return f'<section><h2>{e(title)}</h2><p class="note">{e(panel.note)}</p></section>'
    rows = [
        (
            f'<span data-group="{e(row.group[dimension])}">{e(row.group[dimension] or "(none)")}</span>',
            f'<span data-value="{row.cost.total}">{money(row.cost.total)}</span>',
            count(row.requests),
            count(row.tokens.total),
        )
        for row in panel.answer.rows
    ]
    grid = table([dimension, "cost", "requests", "tokens"], rows, test_id=test_id)
    return f"<section><h2>{e(title)}</h2>{grid}</section>"


def _kinds(total: Measures) -> str:
    cost = total.cost
    largest = max((getattr(cost, k) for k, _ in _KINDS), default=Decimal(0)) or Decimal(1)
    rows = [
        (
            e(label),
            f'<span data-kind="{k}" data-value="{getattr(cost, k)}">{money(getattr(cost, k))}</span>',
            f'<span class="bar" style="width:{float(getattr(cost, k) / largest * 100):.1f}%"></span>',
        )
        for k, label in _KINDS
        if getattr(cost, k)
    ]
    tokens = total.tokens
    note = (
        f"tokens: {count(tokens.input)} input ({count(tokens.cache_read)} cached), {count(tokens.output)} output"
        f" ({count(tokens.reasoning)} reasoning)"
    )
    grid = table(["kind", "cost", ""], rows, test_id="kinds")
    return f'<section><h2>Cost by token kind</h2>{grid}<p class="note">{e(note)}</p></section>'


def _errors(ov: Overview) -> str:
    panel = ov.errors
    rows = [
        (
            e(r.group["status"]),
            e(r.group["service"] or "(none)"),
            e(r.group["model"]),
            f'<span data-value="{r.events}">{count(r.events)}</span>',
        )
        for r in (panel.answer.rows if panel.answer else [])
    ]
    errors = table(
        ["status", "service", "model", "calls"], rows, test_id="errors", empty="no failed calls in this range"
    )
    if panel.answer is None:
        errors = f'<p class="note" data-test="errors">{e(panel.note)}</p>'
    if ov.dead_letters.counts is None:
        letters = f'<p class="note" data-test="dead-letters">{e(ov.dead_letters.note)}</p>'
    else:
        items = sorted(ov.dead_letters.counts.items(), key=lambda kv: -kv[1])
        letters = table(
            ["reason", "dead letters"],
            [
                (f'<span data-group="{e(reason)}">{e(reason)}</span>', f'<span data-value="{n}">{count(n)}</span>')
                for reason, n in items
            ],
            test_id="dead-letters",
            empty="no dead letters",
        )
    return f"<section><h2>Errors</h2>{errors}<h3>Dead letters by reason</h3>{letters}</section>"


def _budgets(ov: Overview) -> str:
    tz = ov.view.tz
    rows = []
    for line in ov.budgets:
        status, spec = line.status, line.status.budget.spec
        marks = "".join(
            f'<i style="left:{min(float(t.level(spec.limit) / spec.limit * 100), 100):.1f}%" title="{e(t.key)}"></i>'
            for t in spec.ordered_thresholds()
        )
        fill = min(float(status.percent), 100.0)
        rows.append(
            (
                f'<span data-budget="{e(status.budget.budget_id)}">{e(spec.name or status.budget.budget_id)}</span>',
                e(_scope_text(spec.scope.model_dump(exclude_none=True))),
                f"{e(when(status.period_start, tz))} &ndash; {e(when(status.period_end, tz))}",
                e(when(status.next_reset, tz)),
                f'<span data-value="{status.spend}">{_amount(status.spend, spec.unit)}</span>'
                f" / {_amount(status.limit, spec.unit)}"
                f'<span class="meter"><b style="width:{fill:.1f}%"></b>{marks}</span>',
                f"{status.percent:.1f} %" + (f" · crossed {e(', '.join(status.crossed))}" if status.crossed else ""),
                "—"
                if line.projected is None
                else _amount(line.projected, spec.unit)
                + (f' <em class="over">+{_amount(line.overrun, spec.unit)} over</em>' if line.overrun else ""),
            )
        )
    budgets = table(
        ["budget", "scope", "period", "next reset", "spend / limit", "used", "projected at period end"],
        rows,
        test_id="budgets",
        empty="no budgets for these clients",
    )
    alert_rows = [
        (
            e(when(record.alert.created_at, tz)),
            e(record.alert.name or record.alert.budget_id),
            e(record.alert.kind),
            e(", ".join(record.alert.thresholds)),
            _amount(record.alert.spend, record.alert.unit),
            e(_deliveries(record.deliveries)),
        )
        for record in ov.alerts
    ]
    alerts = table(
        ["at", "budget", "kind", "thresholds", "spend", "delivery"],
        alert_rows,
        test_id="alerts",
        empty="no alerts in 30 days",
    )
    return f"<section><h2>Budgets</h2>{budgets}<h3>Recent alerts</h3>{alerts}</section>"


def _scope_text(scope: dict[str, str]) -> str:
    return ", ".join(f"{k.removesuffix('_id')}={v}" for k, v in scope.items())


def _amount(value: Decimal, unit: str) -> str:
    return money(value) if unit == "usd" else f"{count(int(value))} {e(unit)}"


def _deliveries(deliveries: Sequence[object]) -> str:
    """Each channel's last attempt: ``webhook delivered (2 attempts)``."""
    last: dict[str, tuple[str, int]] = {}
    for d in deliveries:
        channel, status, attempt = getattr(d, "channel", ""), getattr(d, "status", ""), getattr(d, "attempt", 0)
        last[channel] = (status, attempt)
    if not last:
        return "pending"
    return "; ".join(f"{c} {s} ({a} attempt{'s' if a != 1 else ''})" for c, (s, a) in last.items())


def _store_panels(ov: Overview) -> str:
    if ov.unknown is None:
        return ""
    rows = [
        (e(m.provider_raw or "(none)"), e(m.model_raw), count(m.events), e(when(m.last_seen, ov.view.tz)))
        for m in ov.unknown
    ]
    unknown = table(
        ["provider", "model", "events", "last seen"], rows, test_id="unknown", empty="every model has a price"
    )
    return f"<section><h2>Unknown models waiting for a price</h2>{unknown}</section>"


def render_prices(client: Client, view: PriceView, scope: Scope, now: datetime) -> str:
    """The book in force at the view's moment (overrides marked), the contracts the key may see, the versions."""
    at = view.moment(now)
    rows = [
        (
            e(r.provider),
            f'<span data-model="{e(r.model)}">{e(r.model)}</span>'
            + (' <em class="tag">override</em>' if r.overridden else "")
            + (' <em class="tag">approximate</em>' if r.approximate else ""),
            *(
                _price(r.prices.get(k))
                for k in ("input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok", "requests_kcount")
            ),
            _validity(r.valid_from, r.valid_to),
        )
        for r in book_in_force(client, at, search=view.search)
    ]
    book = table(
        [
            "provider",
            "model",
            "input /Mtok",
            "cached /Mtok",
            "cache write /Mtok",
            "output /Mtok",
            "/1k requests",
            "valid",
        ],
        rows,
        test_id="book",
        empty="no model of the book in force matches",
    )
    contract_rows = [
        (
            e(c.client_id),
            e(c.provider),
            e(c.model),
            f"&times; {e(c.multiplier.normalize())}",
            f"{e(c.valid_from.date())} &ndash; {e(c.valid_to.date())}",
        )
        for c in contracts_in_force(client, at, None if scope.admin else sorted(scope.clients))
    ]
    contracts = table(
        ["client", "provider", "model", "multiplier", "valid"],
        contract_rows,
        test_id="contracts",
        empty="no contracts in force",
    )
    versions = table(
        ["book version", "price rows", "models", "approximate"],
        [(count(v.book_version), count(v.rows), count(v.models), count(v.approximate)) for v in book_versions(client)],
        test_id="versions",
        empty="no book loaded",
    )
    at_text = at.strftime("%Y-%m-%dT%H:%M")
    form = f"""<form class="filters" method="get" action="/dashboard/prices" data-test="price-search">
<label>model<input name="search" value="{e(view.search)}" placeholder="gpt-4o, claude, openai ..."></label>
<label>at (UTC)<input name="at" type="datetime-local" value="{e(at_text)}"></label>
<button type="submit">Search</button></form>"""
    body = (
        f"{form}<section><h2>Book in force at {e(at_text)} UTC</h2>{book}</section>"
        f"<section><h2>Contracts</h2>{contracts}</section><section><h2>Book versions</h2>{versions}</section>"
    )
    return page("Prices", body, nav=nav(scope))


def _validity(start: datetime, end: datetime) -> str:
    """The book's open ends (1970, 2106) shown as none: "always", "from 2026-10-19", "until ..."."""
    since = "" if start.year <= BOOK_START.year else f"from {start.date()}"
    until = "" if end.year >= BOOK_END.year else f"until {end.date()}"
    return e(" ".join(filter(None, (since, until))) or "always")


def _price(value: Decimal | None) -> str:
    return "—" if value is None else f"${value.normalize():f}"


def render_login(message: str = "") -> str:
    """The key form: the script posts the key once, in a header, and the answer sets the session cookie."""
    note = f'<p class="note" role="alert">{e(message)}</p>' if message else ""
    body = f"""<section class="login"><h2>Sign in with an API key</h2>{note}
<form id="login" data-test="login">
<label>API key<input id="key" name="key" type="password" autocomplete="off" required></label>
<button type="submit">Open the dashboard</button></form>
<p class="note">An admin key sees every client; a client key only its own. The key is kept in an HttpOnly cookie
for this site only (SameSite=Strict) and honoured for reading dashboard pages, never for changes.
The local admin key of <code>usagemeter serve</code> is in <code>~/.config/usagemeter/admin.key</code>.</p></section>"""
    return page("Sign in", body)


def render_error(status: int, message: str) -> str:
    return page(
        "Error",
        f'<section><h2>{status}</h2><p class="note" role="alert">{e(message)}</p>'
        '<p><a href="/dashboard">Back</a></p></section>',
    )
