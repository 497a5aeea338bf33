"""Pricing cases worked out by hand from the providers' published prices, through the real engine.

Every expected cost below is written from the per-million-token (or per-thousand-call) prices the
providers publish, as literals, never computed with genai-prices; ``mtok("2.50", 1_000)`` is 1,000 tokens
at $2.50 per million. The events go through the staging table as the worker inserts them (one Avro
block), and each cost component and the total must match to the Decimal (18 places).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from tests.integration.test_engine_pricing import EPOCH, MICROSECOND, _insert
from usagemeter.consumers import migrations
from usagemeter.consumers.settings import ClickHouseSettings
from usagemeter.consumers.store import connect
from usagemeter.pricing import overrides, pricebook

pytestmark = pytest.mark.clickhouse

EIGHTEEN_PLACES = Decimal(10) ** -18
COMPONENTS = ("input", "cache_read", "cache_write", "output", "reasoning", "audio", "web_search", "request")


def mtok(price_per_million: str, tokens: int) -> Decimal:
    return Decimal(price_per_million) * tokens / 1_000_000


def kcalls(price_per_thousand: str, calls: int) -> Decimal:
    return Decimal(price_per_thousand) * calls / 1_000


@dataclass(frozen=True)
class Case:
    provider: str
    model: str
    at: datetime
    usage: dict[str, int]
    expected: dict[str, Decimal]
    """Cost by component (COMPONENTS); the total is their sum unless ``total`` is given."""
    service_tier: str = ""
    client: str = "acme"
    cost: str | None = None
    total: Decimal | None = None
    source: str = "calculated"
    status: str = "priced"
    multiplier: Decimal = Decimal(1)
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


MARCH = utc("2026-03-02 12:00:00")
NOVEMBER = utc("2026-11-02 12:00:00")  # after genai-prices' own batch, flex and priority variants begin

CASES: dict[str, Case] = {
    # --- OpenAI: cached tokens are part of input tokens; no cache-write premium -----------------------
    "openai gpt-4o plain": Case(
        "openai",
        "gpt-4o",
        MARCH,
        {"input_tokens": 1_000, "output_tokens": 2_000},
        {"input": mtok("2.50", 1_000), "output": mtok("10.00", 2_000)},
    ),
    "openai gpt-4o cache read": Case(
        "openai",
        "gpt-4o",
        MARCH,
        {"input_tokens": 10_000, "cache_read_tokens": 4_000, "output_tokens": 500},
        {"input": mtok("2.50", 6_000), "cache_read": mtok("1.25", 4_000), "output": mtok("10.00", 500)},
    ),
    "openai gpt-4o-mini cache read": Case(
        "openai",
        "gpt-4o-mini",
        MARCH,
        {"input_tokens": 200_000, "cache_read_tokens": 150_000, "output_tokens": 1_000},
        {"input": mtok("0.15", 50_000), "cache_read": mtok("0.075", 150_000), "output": mtok("0.60", 1_000)},
    ),
    "openai cache write costs the input price": Case(
        "openai",
        "gpt-4o",
        MARCH,
        {"input_tokens": 5_000, "cache_write_tokens": 3_000, "output_tokens": 100},
        {"input": mtok("2.50", 5_000), "output": mtok("10.00", 100)},
    ),
    "openai o3-mini reasoning": Case(
        "openai",
        "o3-mini",
        MARCH,
        {"input_tokens": 1_000, "output_tokens": 5_000, "reasoning_tokens": 4_000},
        {"input": mtok("1.10", 1_000), "output": mtok("4.40", 1_000), "reasoning": mtok("4.40", 4_000)},
    ),
    "openai gpt-5 reasoning and cache": Case(
        "openai",
        "gpt-5",
        MARCH,
        {"input_tokens": 20_000, "cache_read_tokens": 10_000, "output_tokens": 3_000, "reasoning_tokens": 2_500},
        {
            "input": mtok("1.25", 10_000),
            "cache_read": mtok("0.125", 10_000),
            "output": mtok("10.00", 500),
            "reasoning": mtok("10.00", 2_500),
        },
    ),
    "openai o3 the day before its price cut": Case(
        "openai",
        "o3",
        utc("2025-06-09 23:59:59"),
        {"input_tokens": 1_000_000, "output_tokens": 1_000_000},
        {"input": mtok("10.00", 1_000_000), "output": mtok("40.00", 1_000_000)},
    ),
    "openai o3 from its price cut (2025-06-10)": Case(
        "openai",
        "o3",
        utc("2025-06-10 00:00:00"),
        {"input_tokens": 1_000_000, "output_tokens": 1_000_000},
        {"input": mtok("2.00", 1_000_000), "output": mtok("8.00", 1_000_000)},
    ),
    "openai web search calls": Case(
        "openai",
        "gpt-4o",
        MARCH,
        {"input_tokens": 1_000, "output_tokens": 100, "web_searches": 2},
        {"input": mtok("2.50", 1_000), "output": mtok("10.00", 100), "web_search": kcalls("10.00", 2)},
    ),
    "openai batch: half price (published rule)": Case(
        "openai",
        "gpt-4o",
        MARCH,
        {"input_tokens": 10_000, "cache_read_tokens": 4_000, "output_tokens": 2_000},
        {"input": mtok("1.25", 6_000), "cache_read": mtok("0.625", 4_000), "output": mtok("5.00", 2_000)},
        service_tier="batch",
    ),
    "openai batch gpt-5 (genai-prices variant)": Case(
        "openai",
        "gpt-5",
        NOVEMBER,
        {"input_tokens": 1_000_000, "output_tokens": 1_000_000},
        {"input": mtok("0.625", 1_000_000), "output": mtok("5.00", 1_000_000)},
        service_tier="batch",
    ),
    "openai flex gpt-5": Case(
        "openai",
        "gpt-5",
        NOVEMBER,
        {"input_tokens": 1_000, "output_tokens": 1_000},
        {"input": mtok("0.625", 1_000), "output": mtok("5.00", 1_000)},
        service_tier="flex",
    ),
    "openai priority gpt-5": Case(
        "openai",
        "gpt-5",
        NOVEMBER,
        {"input_tokens": 1_000, "output_tokens": 1_000},
        {"input": mtok("2.50", 1_000), "output": mtok("20.00", 1_000)},
        service_tier="priority",
    ),
    "openai flex where the model has none: standard, flagged": Case(
        "openai",
        "gpt-4o",
        NOVEMBER,
        {"input_tokens": 1_000, "output_tokens": 1_000},
        {"input": mtok("2.50", 1_000), "output": mtok("10.00", 1_000)},
        service_tier="flex",
        status="approximate",
    ),
    # --- Anthropic: cache reads and writes are part of input tokens here (the event contract) ----------
    "anthropic 5-minute cache write and read": Case(
        "anthropic",
        "claude-3-5-haiku-latest",
        MARCH,
        {"input_tokens": 10_000, "cache_read_tokens": 5_000, "cache_write_tokens": 3_000, "output_tokens": 1_000},
        {
            "input": mtok("0.80", 2_000),
            "cache_read": mtok("0.08", 5_000),
            "cache_write": mtok("1.00", 3_000),
            "output": mtok("4.00", 1_000),
        },
    ),
    "anthropic 1-hour cache write": Case(
        "anthropic",
        "claude-haiku-4-5",
        MARCH,
        {
            "input_tokens": 10_000,
            "cache_read_tokens": 1_000,
            "cache_write_tokens": 6_000,
            "cache_write_1h_tokens": 4_000,
            "output_tokens": 500,
        },
        {
            "input": mtok("1.00", 3_000),
            "cache_read": mtok("0.10", 1_000),
            "cache_write": mtok("1.25", 2_000) + mtok("2.00", 4_000),
            "output": mtok("5.00", 500),
        },
    ),
    "anthropic opus 4.1": Case(
        "anthropic",
        "claude-opus-4-1",
        MARCH,
        {"input_tokens": 1_000, "output_tokens": 1_000},
        {"input": mtok("15.00", 1_000), "output": mtok("75.00", 1_000)},
    ),
    "anthropic sonnet 4.5 at exactly 200k input: base prices": Case(
        "anthropic",
        "claude-sonnet-4-5",
        MARCH,
        {"input_tokens": 200_000, "cache_read_tokens": 50_000, "output_tokens": 1_000},
        {"input": mtok("3.00", 150_000), "cache_read": mtok("0.30", 50_000), "output": mtok("15.00", 1_000)},
    ),
    "anthropic sonnet 4.5 above 200k input: long-context prices for every token": Case(
        "anthropic",
        "claude-sonnet-4-5",
        MARCH,
        {"input_tokens": 200_001, "cache_read_tokens": 50_000, "output_tokens": 1_000},
        {"input": mtok("6.00", 150_001), "cache_read": mtok("0.60", 50_000), "output": mtok("22.50", 1_000)},
    ),
    "anthropic batch above 200k: half the long-context prices": Case(
        "anthropic",
        "claude-sonnet-4-5",
        MARCH,
        {"input_tokens": 300_000, "output_tokens": 2_000},
        {"input": mtok("3.00", 300_000), "output": mtok("11.25", 2_000)},
        service_tier="batch",
    ),
    "anthropic batch with a cache write": Case(
        "anthropic",
        "claude-3-5-haiku-latest",
        MARCH,
        {"input_tokens": 4_000, "cache_write_tokens": 1_000, "output_tokens": 1_000},
        {"input": mtok("0.40", 3_000), "cache_write": mtok("0.50", 1_000), "output": mtok("2.00", 1_000)},
        service_tier="batch",
    ),
    "anthropic web search": Case(
        "anthropic",
        "claude-haiku-4-5",
        MARCH,
        {"input_tokens": 100, "output_tokens": 100, "web_searches": 3},
        {"input": mtok("1.00", 100), "output": mtok("5.00", 100), "web_search": kcalls("10.00", 3)},
    ),
    # --- Google Gemini: long-context tier above 200k prompt tokens; storage-priced cache ---------------
    # Gemini Flash models have a cached-audio price the event has no field for: priced, flagged approximate.
    "gemini 2.5 pro up to 200k": Case(
        "google",
        "gemini-2.5-pro",
        MARCH,
        {"input_tokens": 100_000, "cache_read_tokens": 40_000, "output_tokens": 2_000},
        {"input": mtok("1.25", 60_000), "cache_read": mtok("0.125", 40_000), "output": mtok("10.00", 2_000)},
    ),
    "gemini 2.5 pro above 200k": Case(
        "google",
        "gemini-2.5-pro",
        MARCH,
        {"input_tokens": 250_000, "cache_read_tokens": 40_000, "output_tokens": 2_000},
        {"input": mtok("2.50", 210_000), "cache_read": mtok("0.25", 40_000), "output": mtok("15.00", 2_000)},
    ),
    "gemini cache write: no write price, input price": Case(
        "google",
        "gemini-2.5-flash",
        MARCH,
        {"input_tokens": 10_000, "cache_write_tokens": 4_000, "output_tokens": 100},
        {"input": mtok("0.30", 10_000), "output": mtok("2.50", 100)},
        status="approximate",
    ),
    "gemini 2.5 flash audio input": Case(
        "google",
        "gemini-2.5-flash",
        MARCH,
        {"input_tokens": 10_000, "input_audio_tokens": 6_000, "output_tokens": 200},
        {"input": mtok("0.30", 4_000), "audio": mtok("1.00", 6_000), "output": mtok("2.50", 200)},
        status="approximate",
    ),
    "gemini 2.0 flash audio and cache read": Case(
        "google",
        "gemini-2.0-flash",
        MARCH,
        {"input_tokens": 20_000, "cache_read_tokens": 5_000, "input_audio_tokens": 10_000, "output_tokens": 1_000},
        {
            "input": mtok("0.10", 5_000),
            "cache_read": mtok("0.025", 5_000),
            "audio": mtok("0.70", 10_000),
            "output": mtok("0.40", 1_000),
        },
        status="approximate",
    ),
    "gemini batch above 200k: half price (published rule)": Case(
        "google",
        "gemini-2.5-pro",
        MARCH,
        {"input_tokens": 300_000, "output_tokens": 1_000},
        {"input": mtok("1.25", 300_000), "output": mtok("7.50", 1_000)},
        service_tier="batch",
    ),
    # --- DeepSeek: off-peak hours 16:30-00:30 UTC at half price ----------------------------------------
    "deepseek standard hours": Case(
        "deepseek",
        "deepseek-chat",
        utc("2025-11-01 10:00:00"),
        {"input_tokens": 10_000, "cache_read_tokens": 4_000, "output_tokens": 1_000},
        {"input": mtok("0.27", 6_000), "cache_read": mtok("0.07", 4_000), "output": mtok("1.10", 1_000)},
    ),
    "deepseek off-peak": Case(
        "deepseek",
        "deepseek-chat",
        utc("2025-11-01 17:00:00"),
        {"input_tokens": 10_000, "cache_read_tokens": 4_000, "output_tokens": 1_000},
        {"input": mtok("0.135", 6_000), "cache_read": mtok("0.035", 4_000), "output": mtok("0.55", 1_000)},
    ),
    "deepseek off-peak begins at 16:30:00": Case(
        "deepseek",
        "deepseek-chat",
        utc("2025-11-01 16:30:00"),
        {"input_tokens": 1_000, "output_tokens": 1_000},
        {"input": mtok("0.135", 1_000), "output": mtok("0.55", 1_000)},
    ),
    "deepseek standard from 00:30:00": Case(
        "deepseek",
        "deepseek-chat",
        utc("2025-11-02 00:30:00"),
        {"input_tokens": 1_000, "output_tokens": 1_000},
        {"input": mtok("0.27", 1_000), "output": mtok("1.10", 1_000)},
    ),
    # --- caller-given cost, overrides, contracts, unknown models ---------------------------------------
    "caller-given cost wins, components still calculated": Case(
        "openai",
        "gpt-4o",
        MARCH,
        {"input_tokens": 1_000, "output_tokens": 2_000},
        {"input": mtok("2.50", 1_000), "output": mtok("10.00", 2_000)},
        cost="0.042",
        total=Decimal("0.042"),
        source="caller",
    ),
    "override prices a model genai-prices does not know": Case(
        "acme-cloud",
        "acme-llm-7b",
        MARCH,
        {"input_tokens": 1_000_000, "output_tokens": 500_000},
        {"input": mtok("1.00", 1_000_000), "output": mtok("2.00", 500_000)},
        source="override",
    ),
    "override by pattern, from its effective date": Case(
        "openai",
        "gpt-4o-mini",
        utc("2026-07-01 00:00:00"),
        {"input_tokens": 1_000_000, "output_tokens": 1_000_000},
        {"input": mtok("0.10", 1_000_000), "output": mtok("0.60", 1_000_000)},
        source="override",
    ),
    "override by pattern, not before its effective date": Case(
        "openai",
        "gpt-4o-mini",
        utc("2026-05-31 23:59:59"),
        {"input_tokens": 1_000_000, "output_tokens": 1_000_000},
        {"input": mtok("0.15", 1_000_000), "output": mtok("0.60", 1_000_000)},
    ),
    "client discount of 15 %": Case(
        "openai",
        "gpt-4o",
        MARCH,
        {"input_tokens": 1_000, "output_tokens": 2_000},
        {"input": mtok("2.50", 1_000), "output": mtok("10.00", 2_000)},
        client="bigco",
        multiplier=Decimal("0.85"),
        source="override",
    ),
    "client discount scoped to another provider does not apply": Case(
        "openai",
        "gpt-4o",
        MARCH,
        {"input_tokens": 1_000, "output_tokens": 2_000},
        {"input": mtok("2.50", 1_000), "output": mtok("10.00", 2_000)},
        client="anthropic-only",
    ),
    "client markup scoped to its provider applies": Case(
        "anthropic",
        "claude-opus-4-1",
        MARCH,
        {"input_tokens": 1_000, "output_tokens": 1_000},
        {"input": mtok("15.00", 1_000), "output": mtok("75.00", 1_000)},
        client="anthropic-only",
        multiplier=Decimal("1.1"),
        source="override",
    ),
    "unknown model: zero and flagged": Case(
        "nobody",
        "no-such-model",
        MARCH,
        {"input_tokens": 1_000, "output_tokens": 1_000},
        {},
        source="unpriced",
        status="unknown_model",
    ),
}

OVERRIDES = """
[[model]]
provider = "acme-cloud"
model = "acme-llm-7b"
effective_from = 2026-01-01
input_mtok = "1.00"
output_mtok = "2.00"

[[model]]
provider = "openai"
model = "gpt-4o-mini*"
effective_from = 2026-06-01
input_mtok = "0.10"

[[contract]]
client = "bigco"
multiplier = "0.85"
effective_from = 2026-01-01

[[contract]]
client = "anthropic-only"
provider = "anthropic"
multiplier = "1.1"
effective_from = 2026-01-01
"""


@pytest.fixture(scope="module")
def priced(store_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """Every case priced by the engine in one block, read back by event id."""
    settings = ClickHouseSettings(dsn=store_dsn, database=f"t_{uuid.uuid4().hex[:12]}")
    client: Client = connect(settings)
    migrations.apply(client)
    pricebook.load(client)
    path: Path = tmp_path_factory.mktemp("overrides") / "overrides.toml"
    path.write_text(OVERRIDES)
    overrides.load(client, overrides.read(path))
    _insert(client, [_event(case) for case in CASES.values()])
    columns = [f"cost_{name}" for name in COMPONENTS]
    rows = client.query(
        f"SELECT toString(event_id), {', '.join(columns)}, cost_total, cost_source, price_status FROM usage_events"
    )
    yield {
        row[0]: {**dict(zip(COMPONENTS, row[1:9], strict=True)), "total": row[9], "source": row[10], "status": row[11]}
        for row in rows.result_rows
    }
    client.command("DROP DATABASE IF EXISTS {db:Identifier} SYNC", parameters={"db": settings.database})


def _event(case: Case) -> dict[str, Any]:
    return {
        "event_id": case.event_id,
        "event_time": (case.at - EPOCH) // MICROSECOND,
        "client_id": case.client,
        "provider": case.provider,
        "model": case.model,
        "service_tier": case.service_tier,
        "cost": case.cost,
        **case.usage,
    }


@pytest.mark.parametrize("name", list(CASES))
def test_case(priced: dict[str, dict[str, Any]], name: str) -> None:
    case = CASES[name]
    got = priced[case.event_id]
    expected = {part: _stored(case.expected.get(part, Decimal(0)) * case.multiplier) for part in COMPONENTS}
    total = case.total if case.total is not None else _stored(sum(case.expected.values(), Decimal(0)) * case.multiplier)
    assert {part: got[part] for part in COMPONENTS} == expected
    assert (got["total"], got["source"], got["status"]) == (total, case.source, case.status)


def test_there_are_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30


def _stored(value: Decimal) -> Decimal:
    """What a Decimal(38, 18) column holds: rounded half to even at 18 places."""
    return value.quantize(EIGHTEEN_PLACES)
