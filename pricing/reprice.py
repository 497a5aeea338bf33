"""``reprice()``: events of a period priced again with the book (and overrides) in force now.

Prices events that were ``unknown_model`` once a name resolves and a price exists, and applies a
corrected price to a past period. Nothing is updated in place (materialized views only see inserts):
for every event whose priced state changed, two signed rows go into ``cost_adjustments`` (migration
0010), the current state withdrawn and the new one added, and views carry them into the aggregates.

The new state comes from the engine's own functions, never from a copy of them: names through
``usagemeter_block_model_ref`` (0008, as the staging view resolves them) and prices through
``usagemeter_cost`` (0009, the staging view's pricing). A caller-given cost still wins, as in the view.

Idempotent and safe after a crash: the rows written are new state minus CURRENT state
(``usage_events_current``: original plus every adjustment so far), so a second run finds nothing to do
and a run interrupted half-way is completed by the next. Rows are inserted in chunks with a
deduplication token (run id and chunk number), so a retried chunk is dropped by every table it feeds.
Two runs over the same events at the same moment would each apply their difference: run one at a time.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from clickhouse_connect.driver.client import Client

from usagemeter.schemas.clock import SYSTEM_CLOCK, utc_datetime

COST_COLUMNS: Final = (
    "cost_input", "cost_cache_read", "cost_cache_write", "cost_output", "cost_reasoning", "cost_audio",
    "cost_web_search", "cost_request", "cost_total",
)  # fmt: skip
COUNT_COLUMNS: Final = (
    "requests", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
    "input_audio_tokens", "output_audio_tokens", "web_searches", "tool_calls",
)  # fmt: skip
STATE_COLUMNS: Final = ("provider", "model", "price_status", "cost_source", *COST_COLUMNS)
IDENTITY_COLUMNS: Final = (
    "event_id", "event_time", "client_id", "user_id", "service", "operation", "status", "service_tier",
    "provider_raw", "model_raw", "labels",
)  # fmt: skip
CHUNK_EVENTS: Final = 10_000

_WHERE: Final = """
event_time >= {since:DateTime64(6, 'UTC')}
AND event_time < {until:DateTime64(6, 'UTC')}
AND ({client_id:String} = '' OR client_id = {client_id:String})
AND ({model:String} = '' OR model = {model:String} OR lower(model_raw) = lower({model:String}))
"""

_NAMES_SQL: Final = "SELECT groupUniqArray((provider_raw, model_raw)) FROM usage_events_current WHERE " + _WHERE

# Current and new state of every event in the period whose priced state would change. The unknown-name
# rule (lower-cased names as given) is the staging view's; c's fields are read from a subquery column so
# usagemeter_cost is expanded once.
_CHANGED_SQL: Final = (
    """
SELECT
    event_id, event_time, client_id, user_id, service, operation, status, service_tier, provider_raw, model_raw, labels,
    requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
    input_audio_tokens, output_audio_tokens, web_searches, tool_calls,
    provider, model, price_status, cost_source,
    cost_input, cost_cache_read, cost_cache_write, cost_output, cost_reasoning, cost_audio, cost_web_search,
    cost_request, cost_total,
    new_provider, new_model, c.price_status, if(cost_source = 'caller', 'caller', c.cost_source),
    c.input, c.cache_read, c.cache_write, c.output, c.reasoning, c.audio, c.web_search, c.request,
    if(cost_source = 'caller', cost_total, c.total)
FROM
(
    SELECT
        *,
        usagemeter_cost(client_id, new_provider, new_model, service_tier, event_time, input_tokens, output_tokens,
                        cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens,
                        input_audio_tokens, output_audio_tokens, web_searches, requests) AS c
    FROM
    (
        SELECT
            *,
            usagemeter_block_model_ref(provider_raw, model_raw, {names:Array(Tuple(String, String))}) AS resolved,
            if(resolved[2] = '', lower(provider_raw), resolved[1]) AS new_provider,
            if(resolved[2] = '', lower(model_raw), resolved[2]) AS new_model
        FROM usage_events_current
        WHERE """
    + _WHERE
    + """
    )
)
WHERE (new_provider, new_model, c.price_status, if(cost_source = 'caller', 'caller', c.cost_source),
       c.input, c.cache_read, c.cache_write, c.output, c.reasoning, c.audio, c.web_search, c.request,
       if(cost_source = 'caller', cost_total, c.total))
   != (provider, model, price_status, cost_source, cost_input, cost_cache_read, cost_cache_write, cost_output,
       cost_reasoning, cost_audio, cost_web_search, cost_request, cost_total)
ORDER BY event_time, event_id
"""
)

_FAR_FUTURE: Final = datetime(2106, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Selection:
    """The events to price again: from ``since`` to ``until`` (exclusive; None: no end), of one client and
    one model when given (a model id as usage_events stores it, or a name as events give it)."""

    since: datetime
    until: datetime | None = None
    client_id: str = ""
    model: str = ""


@dataclass(frozen=True, slots=True)
class Repriced:
    run_id: uuid.UUID
    dry_run: bool
    events_repriced: int
    unknown_now_priced: int
    cost_delta: Decimal
    cost_delta_by_model: dict[str, Decimal]
    """Net change of cost_total per (new) ``provider/model``; an event that changed model also takes its
    old cost away from the old one."""
    chunks_written: int


def reprice(
    client: Client, selection: Selection, *, dry_run: bool = False, reason: str = "reprice", now: datetime | None = None
) -> Repriced:
    """Prices the selected events again; writes the differences (``reason`` kept with them) unless ``dry_run``."""
    if selection.until is not None and selection.until <= selection.since:
        raise ValueError("until must be after since")
    params: dict[str, Any] = {
        "since": selection.since,
        "until": selection.until or _FAR_FUTURE,
        "client_id": selection.client_id,
        "model": selection.model,
    }
    names = client.query(_NAMES_SQL, parameters=params).result_rows[0][0]
    changed = client.query(_CHANGED_SQL, parameters={**params, "names": list(names)}).result_rows
    run_id = uuid.uuid4()
    chunks = 0
    if not dry_run:
        adjusted_at = now or utc_datetime(SYSTEM_CLOCK.now_us())
        for start in range(0, len(changed), CHUNK_EVENTS):
            rows = _signed_rows(changed[start : start + CHUNK_EVENTS], run_id, reason, adjusted_at)
            _insert(client, rows, token=f"reprice:{run_id}:{chunks}")
            chunks += 1
    return _summary(changed, run_id, dry_run, chunks)


_N_IDENTITY, _N_COUNTS, _N_STATE = len(IDENTITY_COLUMNS), len(COUNT_COLUMNS), len(STATE_COLUMNS)
ADJUSTMENT_COLUMNS: Final = (
    *IDENTITY_COLUMNS, "sign", *COUNT_COLUMNS, *STATE_COLUMNS, "run_id", "reason", "adjusted_at",
)  # fmt: skip


def _split(row: Sequence[Any]) -> tuple[Sequence[Any], Sequence[int], Sequence[Any], Sequence[Any]]:
    """(identity, counts, current state, new state) of one _CHANGED_SQL row."""
    counts_end = _N_IDENTITY + _N_COUNTS
    current_end = counts_end + _N_STATE
    return row[:_N_IDENTITY], row[_N_IDENTITY:counts_end], row[counts_end:current_end], row[current_end:]


def _signed_rows(changed: Sequence[Sequence[Any]], run_id: uuid.UUID, reason: str, at: datetime) -> list[list[Any]]:
    rows = []
    for row in changed:
        identity, counts, current, new = _split(row)
        for sign, state in ((-1, current), (1, new)):
            names, costs = list(state[:4]), [sign * Decimal(cost) for cost in state[4:]]
            rows.append([*identity, sign, *(sign * int(n) for n in counts), *names, *costs, run_id, reason, at])
    return rows


def _insert(client: Client, rows: list[list[Any]], *, token: str) -> None:
    client.insert(
        "cost_adjustments",
        rows,
        column_names=list(ADJUSTMENT_COLUMNS),
        settings={
            "async_insert": 0,
            "insert_deduplication_token": token,
            "deduplicate_blocks_in_dependent_materialized_views": 1,
        },
    )


def _summary(changed: Sequence[Sequence[Any]], run_id: uuid.UUID, dry_run: bool, chunks: int) -> Repriced:
    by_model: defaultdict[str, Decimal] = defaultdict(Decimal)
    unknown_now_priced = 0
    for row in changed:
        _, _, current, new = _split(row)
        by_model[f"{current[0]}/{current[1]}"] -= Decimal(current[-1])
        by_model[f"{new[0]}/{new[1]}"] += Decimal(new[-1])
        unknown_now_priced += current[2] == "unknown_model" and new[2] != "unknown_model"
    return Repriced(
        run_id=run_id,
        dry_run=dry_run,
        events_repriced=len(changed),
        unknown_now_priced=unknown_now_priced,
        cost_delta=sum(by_model.values(), Decimal(0)),
        cost_delta_by_model={key: value for key, value in sorted(by_model.items()) if value},
        chunks_written=chunks,
    )
