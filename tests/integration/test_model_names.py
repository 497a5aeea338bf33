"""Model and provider names as callers write them, resolved by the real engine, checked against genai-prices.

The name-forms table goes through the whole staging view (events in, ``usage_events`` read back); the
corpus test asks the engine's resolver for thousands of derived names and compares with genai-prices'
own ``find_provider_model`` wherever genai-prices knows the name. Expected ids are the price book's: the
provider that OWNS the model's prices (Azure's ``gpt-4o-mini`` is OpenAI's model, found through Azure's
fallback providers), as ``usage_events.provider`` stores it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from clickhouse_connect.driver.client import Client
from genai_prices.data_snapshot import DataSnapshot, get_snapshot
from genai_prices.types import ModelInfo, Provider

from tests.fixtures.clickhouse import priced_store
from tests.fixtures.staging import event, stage
from usagemeter.pricing import pricebook

pytestmark = pytest.mark.clickhouse

NAME_FORMS = [
    pytest.param("openai", "gpt-4o-2024-08-06", ("openai", "gpt-4o"), id="OpenAI dated snapshot"),
    pytest.param("", "gpt-4o-mini-2024-07-18", ("openai", "gpt-4o-mini"), id="dated, no provider"),
    pytest.param("OpenAI", "GPT-4o", ("openai", "gpt-4o"), id="case"),
    pytest.param(
        "", "openrouter/openai/gpt-4o-mini", ("openrouter", "openai/gpt-4o-mini"), id="OpenRouter via LiteLLM"
    ),
    pytest.param("openrouter", "openai/gpt-4o-mini", ("openrouter", "openai/gpt-4o-mini"), id="OpenRouter id"),
    pytest.param("", "openai/gpt-4o", ("openai", "gpt-4o"), id="provider/model"),
    pytest.param("openai", "openai/gpt-4o", ("openai", "gpt-4o"), id="provider repeated in the model"),
    pytest.param(
        "litellm",
        "anthropic/claude-3-5-haiku-20241022",
        ("anthropic", "claude-3-5-haiku-latest"),
        id="LiteLLM provider",
    ),
    pytest.param(
        "",
        "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
        ("aws", "regional.anthropic.claude-3-5-sonnet-20240620-v1:0"),
        id="LiteLLM Bedrock",
    ),
    pytest.param(
        "bedrock",
        "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
        ("aws", "regional.anthropic.claude-3-5-sonnet-20240620-v1:0"),
        id="Bedrock cross-region (us.)",
    ),
    pytest.param(
        "aws",
        "eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
        ("aws", "regional.anthropic.claude-3-7-sonnet-20250219-v1:0"),
        id="Bedrock cross-region (eu.)",
    ),
    pytest.param("", "vertex_ai/gemini-1.5-pro-002", ("google", "gemini-1.5-pro"), id="LiteLLM Vertex"),
    pytest.param("vertex_ai", "gemini-1.5-pro-002", ("google", "gemini-1.5-pro"), id="Vertex provider"),
    pytest.param("vertex_ai", "claude-3-5-sonnet-v2@20241022", ("google", "claude-3-5-sonnet"), id="Vertex Claude @"),
    pytest.param("azure", "gpt-4o-mini", ("openai", "gpt-4o-mini"), id="Azure, OpenAI's prices"),
    pytest.param("", "azure/gpt-4o-mini", ("openai", "gpt-4o-mini"), id="LiteLLM Azure"),
    pytest.param("", "azure/my-gpt4o-deployment", None, id="Azure deployment name"),
    pytest.param("", "models/gemini-1.5-pro", ("google", "gemini-1.5-pro"), id="Gemini API models/"),
    pytest.param("google", "gemini-2.5-pro-preview-06-05", ("google", "gemini-2.5-pro"), id="Gemini preview"),
    pytest.param("google", "gemini-2.5-pro-preview-tts", ("google", "gemini-2.5-pro-tts"), id="veto: tts"),
    pytest.param("", "claude-3-5-sonnet-20241022", ("anthropic", "claude-3-5-sonnet"), id="Anthropic dated"),
    pytest.param("", "gpt-5.2-20251211", ("openai", "gpt-5.2"), id="compact date"),
    pytest.param("", "mistral-large-latest", ("mistral", "mistral-large"), id="Mistral latest"),
    pytest.param("", "command-r-plus-08-2024", ("cohere", "command-r-plus"), id="Cohere dated"),
    pytest.param("eu", "gpt-4o", None, id="unknown provider"),
    pytest.param("", "ft:gpt-4o-mini-2024-07-18:acme::abc123", None, id="fine-tune, no provider"),
]


@pytest.fixture(scope="module")
def priced(store_dsn: str) -> Iterator[Client]:
    """One priced database for the module (a migration and a price book load each would cost ~30): each test
    reads back only the event ids it staged."""
    with priced_store(store_dsn) as client:
        yield client


@pytest.mark.parametrize(("provider", "model", "expected"), NAME_FORMS)
def test_name_forms_through_the_staging_view(
    priced: Client, provider: str, model: str, expected: tuple[str, str] | None
) -> None:
    row = event(provider, model, datetime.now(UTC) - timedelta(hours=1), input_tokens=1000, output_tokens=100)
    stage(priced, [row])
    got = priced.query(
        "SELECT provider, model, provider_raw, model_raw, price_status FROM usage_events WHERE event_id = {id:UUID}",
        parameters={"id": row["event_id"]},
    ).result_rows[0]
    assert got[2:4] == (provider, model)
    if expected is None:
        assert (got[0], got[1], got[4]) == (provider.lower(), model.lower(), "unknown_model")
    else:
        assert (got[0], got[1]) == expected
        assert got[4] != "unknown_model"
    known = _genai_prices(get_snapshot(), provider, model)
    if known is not None:
        assert known == expected, "where genai-prices knows a name, the engine must agree with it"


def test_many_blocks_one_name_each_and_one_block_many_names(priced: Client) -> None:
    """The view resolves per distinct name of a block: mixed and repeated names must not get mixed up."""
    at = datetime.now(UTC) - timedelta(hours=1)
    rows = [event(str(p.values[0]), str(p.values[1]), at, input_tokens=10) for p in NAME_FORMS for _ in range(3)]
    stage(priced, rows)
    got = priced.query(
        "SELECT provider_raw, model_raw, provider, model FROM usage_events WHERE event_id IN {ids:Array(UUID)}",
        parameters={"ids": [row["event_id"] for row in rows]},
    ).result_rows
    expected = {
        (str(p.values[0]), str(p.values[1])): p.values[2] or (str(p.values[0]).lower(), str(p.values[1]).lower())
        for p in NAME_FORMS
    }
    assert len(got) == 3 * len(NAME_FORMS)
    assert all(expected[(raw_p, raw_m)] == (p, m) for raw_p, raw_m, p, m in got)


def test_engine_agrees_with_genai_prices_on_derived_names(priced: Client) -> None:
    """Every model id and literal, and dated, versioned and cased variants of them, with and without provider."""
    snapshot = get_snapshot()
    names = sorted(_derived_names(snapshot))
    providers = [p for p, _ in names]
    models = [m for _, m in names]
    rows = priced.query(
        "SELECT arrayMap((p, m) -> usagemeter_resolve_name(p, m), {providers:Array(String)}, {models:Array(String)})",
        parameters={"providers": providers, "models": models},
    ).result_rows[0][0]
    compared, differ = 0, []
    for (provider, model), resolved in zip(names, rows, strict=True):
        known = _genai_prices(snapshot, provider, model)
        if known is None:
            continue
        compared += 1
        if tuple(resolved) != known:
            differ.append((provider, model, tuple(resolved), known))
    print(f"compared {compared} of {len(names)} names genai-prices knows")
    assert compared > 5000
    assert not differ, f"{len(differ)} differ, e.g. {differ[:5]}"


def _derived_names(snapshot: DataSnapshot) -> set[tuple[str, str]]:
    suffixes = ("", "-2025-01-01", "-20250101", "-latest", "-001", "@20241022", "-v1:0", "-preview")
    names = set()
    for provider in snapshot.providers:
        for model in provider.models:
            for base in pricebook.model_names(model):
                for suffix in suffixes:
                    for given in (provider.id, ""):
                        names.add((given, base + suffix))
                names.add((provider.id, base.upper()))
    return names


def _genai_prices(snapshot: DataSnapshot, provider: str, model: str) -> tuple[str, str] | None:
    """genai-prices' answer as (owner of the model's prices, model id); None where it raises."""
    try:
        found, info = snapshot.find_provider_model(model, None, provider or None, None)
    except LookupError:
        return None
    return _owner(snapshot, found, info), info.id


def _owner(snapshot: DataSnapshot, provider: Provider, model: ModelInfo) -> str:
    by_id = {p.id: p for p in snapshot.providers}
    chain = [provider, *(by_id[p] for p in provider.fallback_model_providers or () if p in by_id)]
    return next(p.id for p in chain if any(m is model for m in p.models))
