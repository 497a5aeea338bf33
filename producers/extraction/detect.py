"""``extract_usage``: which provider's shape a response has, decided from its fields alone.

The order matters. Gemini has ``usage_metadata`` and nothing else does. A usage with ``prompt_tokens``
is OpenAI-shaped, inclusive of cached tokens, even when it also carries Anthropic-named cache fields
(LiteLLM's does): it must never be read as Anthropic's. A usage with ``input_tokens`` is the Responses
API's when it has ``input_tokens_details`` (or the response says ``object: "response"``) and
Anthropic's when the response says ``type: "message"`` or the usage has Anthropic's cache fields. Any
other shape is refused rather than guessed: the two conventions differ exactly on cached tokens.
"""

from __future__ import annotations

from usagemeter.producers.extraction import from_anthropic, from_gemini, from_litellm, from_openai
from usagemeter.producers.extraction.base import Extracted, get, text
from usagemeter.schemas.errors import ExtractionError

_ANTHROPIC_USAGE_KEYS = ("cache_read_input_tokens", "cache_creation_input_tokens", "server_tool_use")
_KNOWN = (
    "an OpenAI ChatCompletion or Response, an Anthropic Message, a Gemini GenerateContentResponse, "
    "a LiteLLM ModelResponse, or the dict of one"
)


def extract_usage(response: object) -> Extracted:
    """The usage of one provider response, in the event contract; raises ``ExtractionError`` otherwise."""
    if get(response, "usage_metadata") is not None:
        return from_gemini.generate_content(response)
    usage = get(response, "usage")
    if usage is None:
        raise ExtractionError(
            f"{_describe(response)} carries no usage (a streamed chunk? ask for usage in the last chunk, "
            f"e.g. OpenAI's stream_options={{'include_usage': True}}); expected {_KNOWN}"
        )
    if get(usage, "prompt_tokens") is not None:
        if from_litellm.is_model_response(response):
            return from_litellm.model_response(response)
        return from_openai.chat_completion(response)
    if get(usage, "input_tokens") is not None:
        if get(usage, "input_tokens_details") is not None or text(response, "object") == "response":
            return from_openai.responses_api(response)
        if text(response, "type") == "message" or any(get(usage, key) is not None for key in _ANTHROPIC_USAGE_KEYS):
            return from_anthropic.message(response)
    raise ExtractionError(f"cannot tell which provider's usage {_describe(response)} holds; expected {_KNOWN}")


def _describe(response: object) -> str:
    if isinstance(response, dict):
        return f"a dict with keys {sorted(map(str, response))[:8]}"
    return f"a {type(response).__module__}.{type(response).__qualname__}"
