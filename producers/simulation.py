"""Realistic synthetic traffic: several services, clients, users and models, for the demo and benchmarks.

Token counts follow the shapes real calls have (long prompts, shorter answers, prompt-cache hits,
reasoning on reasoning models, the odd web search, a few errors); every event is valid.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

SERVICES = ("chat-api", "search-assistant", "batch-summariser", "support-bot")
CLIENTS = {"acme": 12, "globex": 7, "initech": 4, "umbrella": 2}
"""Client → number of users; bigger clients make more calls."""
MODELS: tuple[tuple[str, str, float], ...] = (
    ("openai", "gpt-4o-mini", 0.34),
    ("openai", "gpt-4o", 0.12),
    ("openai", "o3-mini", 0.08),
    ("anthropic", "claude-sonnet-4-0", 0.14),
    ("anthropic", "claude-3-5-haiku-latest", 0.14),
    ("google", "gemini-2.0-flash-lite", 0.10),
    ("mistral", "mistral-large", 0.08),
)
REASONING_MODELS = frozenset({"o3-mini"})


def simulated_calls(
    rng: random.Random, count: int, *, spread: timedelta = timedelta(days=2)
) -> Iterator[dict[str, Any]]:
    """``count`` events as ``UsageEmitter.emit`` keyword arguments (``model`` and ``client_id`` included)."""
    now = datetime.now(UTC)
    clients = list(CLIENTS)
    client_weights = [CLIENTS[c] for c in clients]
    models = [m for m in MODELS]
    model_weights = [w for _, _, w in MODELS]
    for _ in range(count):
        client = rng.choices(clients, client_weights)[0]
        provider, model, _w = rng.choices(models, model_weights)[0]
        yield _call(rng, client, provider, model, now - spread * rng.random())


def _call(rng: random.Random, client: str, provider: str, model: str, at: datetime) -> dict[str, Any]:
    inp = int(rng.lognormvariate(7, 1.1)) + 1
    out = int(rng.lognormvariate(5.5, 1.0))
    event: dict[str, Any] = {
        "model": model,
        "client_id": client,
        "provider": provider,
        "user_id": f"{client}-user-{rng.randint(1, CLIENTS[client])}",
        "service": rng.choice(SERVICES),
        "event_time": at,
        "latency_ms": int(rng.lognormvariate(6.5, 0.6)),
        "input_tokens": inp,
        "output_tokens": out,
    }
    if rng.random() < 0.35:
        event["cache_read_tokens"] = rng.randint(0, inp)
    if provider == "anthropic" and rng.random() < 0.2:
        event["cache_write_tokens"] = rng.randint(0, inp - event.get("cache_read_tokens", 0))
    if model in REASONING_MODELS:
        event["reasoning_tokens"] = rng.randint(0, out)
    if rng.random() < 0.03:
        event["web_searches"] = rng.randint(1, 3)
    if rng.random() < 0.02:
        event.update(status=rng.choice(("error", "rate_limited", "timeout")), error="upstream", output_tokens=0)
        event.pop("reasoning_tokens", None)
    return event
