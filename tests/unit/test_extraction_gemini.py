"""Gemini responses, built with google-genai's own types (no network), read into event fields, from the
SDK object, its snake_case dict and the REST API's camelCase JSON.

Gemini's prompt_token_count includes cached tokens; thoughts are reported beside candidates and billed
as output, except where a response already counted them inside candidates (told apart by the total).
"""

from __future__ import annotations

from typing import Any

import pytest
from google.genai.types import (
    Candidate,
    Content,
    FunctionCall,
    GenerateContentResponse,
    GenerateContentResponseUsageMetadata,
    GroundingMetadata,
    MediaModality,
    ModalityTokenCount,
    Part,
)

from usagemeter.producers.extraction import extract_usage


def response(
    usage: GenerateContentResponseUsageMetadata, *, calls: int = 0, queries: int = 0
) -> GenerateContentResponse:
    parts = [Part(text="hi")] + [Part(function_call=FunctionCall(name="lookup", args={})) for _ in range(calls)]
    grounding = GroundingMetadata(web_search_queries=[f"q{i}" for i in range(queries)]) if queries else None
    return GenerateContentResponse(
        response_id="resp-1",
        model_version="gemini-2.5-flash",
        candidates=[Candidate(content=Content(role="model", parts=parts), grounding_metadata=grounding)],
        usage_metadata=usage,
    )


def audio(tokens: int) -> list[ModalityTokenCount]:
    return [
        ModalityTokenCount(modality=MediaModality.TEXT, token_count=100),
        ModalityTokenCount(modality=MediaModality.AUDIO, token_count=tokens),
    ]


Usage = GenerateContentResponseUsageMetadata

CASES = [
    pytest.param(
        Usage(prompt_token_count=1000, candidates_token_count=200, total_token_count=1200),
        {},
        {"input_tokens": 1000, "output_tokens": 200, "total_tokens": 1200},
        id="plain, no thoughts, None details",
    ),
    pytest.param(
        Usage(
            prompt_token_count=40_000,
            cached_content_token_count=32_000,
            candidates_token_count=300,
            total_token_count=40_300,
        ),
        {},
        {"input_tokens": 40_000, "output_tokens": 300, "total_tokens": 40_300, "cache_read_tokens": 32_000},
        id="cached content is part of the prompt",
    ),
    pytest.param(
        Usage(prompt_token_count=500, candidates_token_count=200, thoughts_token_count=800, total_token_count=1500),
        {},
        {"input_tokens": 500, "output_tokens": 1000, "total_tokens": 1500, "reasoning_tokens": 800},
        id="thoughts beside candidates are added to output",
    ),
    pytest.param(
        Usage(prompt_token_count=500, candidates_token_count=1000, thoughts_token_count=800, total_token_count=1500),
        {},
        {"input_tokens": 500, "output_tokens": 1000, "total_tokens": 1500, "reasoning_tokens": 800},
        id="thoughts already inside candidates are not added twice",
    ),
    pytest.param(
        Usage(
            prompt_token_count=600,
            prompt_tokens_details=audio(450),
            candidates_token_count=300,
            candidates_tokens_details=audio(200),
            total_token_count=900,
        ),
        {},
        {
            "input_tokens": 600,
            "output_tokens": 300,
            "total_tokens": 900,
            "input_audio_tokens": 450,
            "output_audio_tokens": 200,
        },
        id="audio by modality",
    ),
    pytest.param(
        Usage(
            prompt_token_count=100,
            tool_use_prompt_token_count=2500,
            candidates_token_count=150,
            total_token_count=2750,
        ),
        {"calls": 1, "queries": 3},
        {"input_tokens": 2600, "output_tokens": 150, "total_tokens": 2750, "web_searches": 3, "tool_calls": 1},
        id="tool results are input; grounding queries are web searches",
    ),
]


@pytest.mark.parametrize(("usage", "options", "expected"), CASES)
def test_generate_content(
    usage: GenerateContentResponseUsageMetadata, options: dict[str, Any], expected: dict[str, Any]
) -> None:
    sdk_object = response(usage, **options)
    extracted = extract_usage(sdk_object)
    assert extracted.model == "gemini-2.5-flash"
    assert extracted.fields == {"provider": "google", "operation": "chat", "request_id": "resp-1", **expected}
    rest_json = sdk_object.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert "usageMetadata" in rest_json
    assert extract_usage(rest_json) == extracted, "the REST API's camelCase JSON reads the same"
    assert extract_usage(sdk_object.model_dump()) == extracted
