"""Pricing through the real engine: the book loaded from genai-prices, events as one Avro block, costs read back.

The engine's cost must equal genai-prices' own ``calc_price`` to the Decimal for every model the book
prices exactly: tiered (long-context) and time-of-day prices included, at random times of day and token
counts on both sides of the tiers. Excluded from the random comparison, because the book flags them
``approximate``: price keys the table has no column for (image, video, character, page, duration,
storage-search prices...). Draws for which genai-prices itself raises (it cannot find the model by its own
id, for example) are skipped and counted.
"""

from __future__ import annotations

import io
import itertools
import random
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from clickhouse_connect.driver.client import Client
from genai_prices import Usage, calc_price
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ModelInfo, Provider

from usagemeter.pricing import columns, pricebook
from usagemeter.schemas import CURRENT

pytestmark = pytest.mark.clickhouse

EIGHTEEN_PLACES = Decimal(10) ** -18
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
EXTRA_DRAWS = 500


def _event(provider: str, model: str, at: datetime, **tokens: int) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_time": (at - EPOCH) // MICROSECOND,
        "client_id": "acme",
        "provider": provider,
        "model": model,
        **tokens,
    }


def _insert(client: Client, events: Sequence[dict[str, Any]]) -> None:
    block = io.BytesIO()
    fastavro.writer(block, CURRENT.plain, events)
    client.raw_insert(
        "usage_staging",
        None,
        block.getvalue(),
        fmt="Avro",
        settings={"input_format_avro_allow_missing_fields": 1, "async_insert": 0},
    )


def _costs(client: Client) -> dict[str, tuple[Decimal, str]]:
    rows = client.query("SELECT toString(event_id), cost_total, price_status FROM usage_events").result_rows
    return {event_id: (cost, status) for event_id, cost, status in rows}


def test_gpt_4o_mini_costs_what_openai_charges(clickhouse: Client) -> None:
    pricebook.load(clickhouse)
    event = _event(
        "openai", "gpt-4o-mini", datetime.now(UTC) - timedelta(hours=1), input_tokens=1000, output_tokens=2000
    )
    _insert(clickhouse, [event])
    cost, _ = _costs(clickhouse)[event["event_id"]]
    assert cost == Decimal("0.00135")


def test_a_price_change_applies_from_its_start_date(clickhouse: Client) -> None:
    pricebook.load(clickhouse)
    provider, model, change = _recent_price_change()
    day = datetime(change.year, change.month, change.day, tzinfo=UTC)
    tokens = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}
    before = _event(provider.id, model.id, day - timedelta(microseconds=1), **tokens)
    after = _event(provider.id, model.id, day, **tokens)
    _insert(clickhouse, [before, after])
    costs = _costs(clickhouse)
    expected = [_genai_total(provider, model, event) for event in (before, after)]
    assert expected[0] != expected[1]
    assert [costs[e["event_id"]][0] for e in (before, after)] == expected


def _recent_price_change() -> tuple[Provider, ModelInfo, datetime]:
    """A model, not approximate, whose input or output price changed on a day of the last three years."""
    oldest = datetime.now(UTC) - timedelta(days=1000)
    for provider in get_snapshot().providers:
        for model in provider.models:
            rows = [row for row in pricebook.model_rows(provider.id, model) if not row.variant]
            for earlier, later in itertools.pairwise(rows):
                changed = (
                    earlier.grid.prices[0] != later.grid.prices[0] or earlier.grid.prices[4] != later.grid.prices[4]
                )
                in_window = oldest < later.valid_from < datetime.now(UTC) - timedelta(days=1)
                if changed and in_window and not (earlier.grid.approximate or later.grid.approximate):
                    return provider, model, later.valid_from
    raise AssertionError("genai-prices has no recent price change to test with")


def test_random_usages_cost_what_genai_prices_says(clickhouse: Client) -> None:
    """Every model once at a random time, then EXTRA_DRAWS random (model, time) pairs, one block."""
    pricebook.load(clickhouse)
    rng = random.Random(20261123)
    models = [(p, m) for p in get_snapshot().providers for m in p.models]
    picks = [*models, *(rng.choice(models) for _ in range(EXTRA_DRAWS))]
    now = datetime.now(UTC)
    excluded: Counter[str] = Counter()
    events: list[dict[str, Any]] = []
    expected: dict[str, Decimal] = {}
    for provider, model in picks:
        at = now - timedelta(seconds=rng.randrange(60, 1090 * 86400))
        reason = _exclusion(model, at)
        if reason:
            excluded[reason] += 1
            continue
        event = _event(provider.id, model.id, at, **_random_tokens(rng))
        try:
            expected[event["event_id"]] = _genai_total(provider, model, event)
        except (LookupError, ValueError) as exc:
            excluded[f"genai-prices raised {type(exc).__name__}"] += 1
            continue
        events.append(event)
    _insert(clickhouse, events)
    got = {event_id: cost for event_id, (cost, _) in _costs(clickhouse).items()}
    wrong = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    distinct = {(e["provider"], e["model"]) for e in events}
    print(f"compared {len(events)} draws over {len(distinct)} models; excluded {dict(excluded)}")
    assert len(events) >= EXTRA_DRAWS
    assert not wrong, f"{len(wrong)} of {len(events)} differ, e.g. {list(wrong.items())[:5]}"


def _exclusion(model: ModelInfo, at: datetime) -> str:
    """Why the book only approximates this model at this time; '' when it prices it exactly."""
    price = model.get_prices(at)
    values = {k: v for k, v in price.__dict__.items() if not k.startswith("_") and v is not None}
    if values.keys() - set(columns.PRICE_COLUMNS):
        return "price keys without a column"
    return ""


def _random_tokens(rng: random.Random) -> dict[str, int]:
    # Tier starts are 100k to 512k input tokens: around 200k and 272k on both sides, and well above.
    input_tokens = rng.choice(
        [0, 1, rng.randrange(1, 2_000), rng.randrange(150_000, 300_000), rng.randrange(1, 2_000_000), 200_000]
    )
    cache_read = rng.randrange(0, input_tokens + 1) if rng.random() < 0.6 else 0
    cache_write = rng.randrange(0, input_tokens - cache_read + 1) if rng.random() < 0.4 else 0
    cache_write_1h = rng.randrange(0, cache_write + 1) if rng.random() < 0.3 else 0
    output_tokens = rng.choice([0, rng.randrange(1, 5_000), rng.randrange(1, 500_000)])
    reasoning = rng.randrange(0, output_tokens + 1) if rng.random() < 0.3 else 0
    # Audio is part of input/output too; kept within the uncached, non-reasoning rest so that no leaf goes negative.
    input_audio = rng.randrange(0, input_tokens - cache_read - cache_write + 1) if rng.random() < 0.15 else 0
    output_audio = rng.randrange(0, output_tokens - reasoning + 1) if rng.random() < 0.15 else 0
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "cache_write_1h_tokens": cache_write_1h,
        "reasoning_tokens": reasoning,
        "input_audio_tokens": input_audio,
        "output_audio_tokens": output_audio,
    }


def _genai_total(provider: Provider, model: ModelInfo, event: dict[str, Any]) -> Decimal:
    usage = Usage(
        input_tokens=event.get("input_tokens", 0),
        output_tokens=event.get("output_tokens", 0),
        cache_read_tokens=event.get("cache_read_tokens", 0),
        cache_write_tokens=event.get("cache_write_tokens", 0),
        cache_write_1h_tokens=event.get("cache_write_1h_tokens", 0),
        output_reasoning_tokens=event.get("reasoning_tokens", 0),
        input_audio_tokens=event.get("input_audio_tokens", 0),
        output_audio_tokens=event.get("output_audio_tokens", 0),
    )
    at = EPOCH + event["event_time"] * MICROSECOND
    result = calc_price(usage, model_ref=model.id, provider_id=provider.id, genai_request_timestamp=at)
    total: Decimal = result.total_price
    return total.quantize(EIGHTEEN_PLACES)
