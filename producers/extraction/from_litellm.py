"""LiteLLM ``ModelResponse`` usage: OpenAI-shaped whatever the provider, plus the provider LiteLLM routed to.

LiteLLM already normalises every provider to OpenAI's convention (for Anthropic, ``prompt_tokens`` is
input + cache read + cache creation), but it also keeps Anthropic's names on the same usage object
(``cache_read_input_tokens``, ``cache_creation_input_tokens``): reading those as Anthropic's exclusive
counts would count the cache twice. So the usage is read as OpenAI's (``from_openai.chat_completion``)
and only the provider comes from LiteLLM, from ``_hidden_params["custom_llm_provider"]``, renamed to
genai-prices' provider ids where LiteLLM's differ. The model stays as LiteLLM reports it: the pipeline
normalises routed and dated names and keeps the original string.
"""

from __future__ import annotations

from collections.abc import Mapping

from usagemeter.producers.extraction import from_openai
from usagemeter.producers.extraction.base import Extracted, get

_PROVIDER_IDS: Mapping[str, str] = {
    "gemini": "google",
    "vertex_ai": "google",
    "vertex_ai_beta": "google",
    "bedrock": "aws",
    "bedrock_converse": "aws",
    "azure_ai": "azure",
    "text-completion-openai": "openai",
    "xai": "x-ai",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "moonshot": "moonshotai",
}
"""LiteLLM provider names -> genai-prices provider ids, where they differ."""


def is_model_response(response: object) -> bool:
    """A LiteLLM object: it carries ``_hidden_params`` (its dict form does not, and reads as OpenAI's)."""
    return isinstance(getattr(response, "_hidden_params", None), Mapping)


def model_response(response: object) -> Extracted:
    """A LiteLLM ``ModelResponse`` from ``litellm.completion``."""
    extracted = from_openai.chat_completion(response)
    hidden = getattr(response, "_hidden_params", None) or {}
    provider = get(hidden, "custom_llm_provider")
    model = extracted.model or get(hidden, "model") or ""
    if not isinstance(provider, str) or not provider:
        return Extracted(model, extracted.fields)
    return Extracted(model, extracted.fields | {"provider": _PROVIDER_IDS.get(provider, provider)})
