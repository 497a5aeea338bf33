"""Google Gemini (google-genai, AI Studio and Vertex) usage, normalised to our convention.

- ``prompt_token_count`` includes ``cached_content_token_count`` (our convention already); tokens of
  tool results fed back to the model (``tool_use_prompt_token_count``) are input too, so they are added.
- Thoughts are billed as output. The API reports ``thoughts_token_count`` beside
  ``candidates_token_count`` (``total = prompt + candidates + tool_use_prompt + thoughts``), but some
  Vertex responses have counted thoughts inside candidates. Like LiteLLM, we tell them apart by the
  total: when prompt + candidates + tool-use prompt already equal it, thoughts are inside candidates.
- Audio tokens come from the per-modality details (``AUDIO``).
- Web searches (Grounding with Google Search) are the search queries the grounding metadata lists.
"""

from __future__ import annotations

from usagemeter.producers.extraction.base import Extracted, count, drop_zeros, get, items, text
from usagemeter.producers.fields import EventFields


def generate_content(response: object) -> Extracted:
    """A ``GenerateContentResponse`` or its dict (SDK snake_case or REST camelCase keys)."""
    usage = get(response, "usage_metadata")
    prompt = count(usage, "prompt_token_count") + count(usage, "tool_use_prompt_token_count")
    candidates = count(usage, "candidates_token_count")
    thoughts = count(usage, "thoughts_token_count")
    total = count(usage, "total_token_count")
    thoughts_inside = total > 0 and prompt + candidates == total
    candidates_list = items(response, "candidates")
    fields = EventFields(
        provider="google",
        operation="chat",
        request_id=text(response, "response_id"),
        input_tokens=prompt,
        output_tokens=candidates if thoughts_inside else candidates + thoughts,
        cache_read_tokens=count(usage, "cached_content_token_count"),
        reasoning_tokens=thoughts,
        input_audio_tokens=_audio(usage, "prompt_tokens_details") + _audio(usage, "tool_use_prompt_tokens_details"),
        output_audio_tokens=_audio(usage, "candidates_tokens_details"),
        total_tokens=total,
        web_searches=sum(len(items(get(c, "grounding_metadata"), "web_search_queries")) for c in candidates_list),
        tool_calls=sum(
            1
            for candidate in candidates_list
            for part in items(get(candidate, "content"), "parts")
            if get(part, "function_call") is not None
        ),
    )
    return Extracted(text(response, "model_version"), drop_zeros(fields))


def _audio(usage: object, details: str) -> int:
    return sum(
        count(entry, "token_count") for entry in items(usage, details) if text(entry, "modality").upper() == "AUDIO"
    )
