"""Bad usage messages, each with the dead-letter reason the worker must give it, for tests that mix them
into good traffic on the real pipeline. Several variants per reason, so that a corpus exercises more than
one way of breaking each rule; ``one_of_each`` is the smallest set that covers every reason."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from typing import Any, Final

from usagemeter.schemas import RejectReason, WriterSchema, by_version
from usagemeter.schemas.validation import (
    MAX_AGE_US,
    MAX_COUNT,
    MAX_FIELD_BYTES,
    MAX_LABEL_KEY_BYTES,
    MAX_LABEL_VALUE_BYTES,
)
from usagemeter.schemas.wire import HEADER_LEN, MAGIC, encode

DAY_US: Final = 86_400 * 1_000_000
BadValue = Callable[[int], bytes | None]
"""Builds one bad message value for the clock ``now_us`` (a new event_id each call)."""


def event(now_us: int, schema: WriterSchema | None = None, /, **overrides: Any) -> bytes:
    """A valid event (schema v2 unless given) at ``now_us``, changed by ``overrides``."""
    base: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_time": now_us,
        "client_id": "acme",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "input_tokens": 10,
    }
    return encode(schema or by_version(2), base | overrides)


def _fields(**overrides: Any) -> BadValue:
    return lambda now_us: event(now_us, **overrides)


def _at(offset_us: int) -> BadValue:
    return lambda now_us: event(now_us, event_time=now_us + offset_us)


def _cut(keep: Callable[[bytes], bytes]) -> BadValue:
    return lambda now_us: keep(event(now_us))


def _not_utf8(field: str, **overrides: Any) -> BadValue:
    """A string field holding the bytes of "ac\\xffe": Avro encodes the length, so only the bytes change."""
    marker = "zzmarkerzz"
    return lambda now_us: event(now_us, None, **{field: marker}, **overrides).replace(marker.encode(), b"ac\xffezzzzzz")


VARIANTS: Final[dict[RejectReason, list[BadValue]]] = {
    "not_avro": [
        lambda _: b"this is not avro at all",
        lambda _: json.dumps({"event_id": str(uuid.uuid4()), "client_id": "acme"}).encode(),
        lambda _: b"\x00\x00\x00\x00\x07" + uuid.uuid4().bytes,  # Confluent framing, which needs a registry
        lambda _: MAGIC + uuid.uuid4().bytes[: HEADER_LEN - len(MAGIC)],  # a header and no body
        lambda _: None,  # a tombstone
    ],
    "unknown_schema": [
        _cut(lambda valid: MAGIC + b"\x00" * 8 + valid[HEADER_LEN:]),
        _cut(lambda valid: MAGIC + uuid.uuid4().bytes[:8] + valid[HEADER_LEN:]),
        _cut(lambda valid: MAGIC + valid[HEADER_LEN - 1 : 1 : -1] + valid[HEADER_LEN:]),  # fingerprint reversed
    ],
    "malformed_avro": [
        _cut(lambda valid: valid[:-6]),
        _cut(lambda valid: valid[:-1]),
        _cut(lambda valid: valid[:HEADER_LEN] + b"\xff" * 12),  # a varint that never ends
        # Bodies the engine would read by the block's record count, shifting every record after them:
        _cut(lambda valid: valid + valid[HEADER_LEN:]),  # two records after one header
        lambda now_us: event(now_us) + event(now_us)[HEADER_LEN:],  # two different records
        _cut(lambda valid: valid + b"\x00\x02"),  # trailing bytes
    ],
    "not_utf8": [
        _not_utf8("client_id"),
        _not_utf8("model"),
        _not_utf8("user_id"),
        # A header and 900 kB of garbage: the engine's error quotes its bytes, which are not UTF-8, so the
        # client raises an error without "Code: N" (seed 12 of Random does; most other seeds give a code).
        _cut(lambda valid: valid[:HEADER_LEN] + random.Random(12).randbytes(900_000)),
        lambda now_us: event(now_us, labels={"team": "zzmarkerzz"}).replace(b"zzmarkerzz", b"\xc3\x28zzzzzzzz"),
    ],
    "missing_client_id": [
        _fields(client_id=""),
        _fields(client_id="", user_id="alice"),
        lambda now_us: event(now_us, by_version(1), client_id=""),
    ],
    "negative_count": [
        _fields(input_tokens=-5),
        _fields(output_tokens=-1),
        _fields(latency_ms=-3),
        _fields(requests=-1),
    ],
    "absurd_count": [
        _fields(input_tokens=MAX_COUNT + 1),
        _fields(output_tokens=2**62),
        _fields(web_searches=MAX_COUNT * 10),
    ],
    "inconsistent_tokens": [
        _fields(input_tokens=100, output_tokens=50, total_tokens=149),
        _fields(input_tokens=100, output_tokens=50, total_tokens=1),
        _fields(input_tokens=10, cache_read_tokens=50),
    ],
    "event_time_future": [_at(3 * DAY_US), _at(365 * DAY_US), _at(2 * DAY_US)],
    "event_time_too_old": [
        _at(-MAX_AGE_US - DAY_US),
        _at(-10 * 365 * DAY_US),
        lambda now_us: event(now_us, event_time=0),
    ],
    "unknown_operation": [_fields(operation="teleport"), _fields(operation="Chat"), _fields(operation="")],
    "unknown_status": [_fields(status="exploded"), _fields(status="OK"), _fields(status="")],
    "oversized_labels": [
        _fields(labels={f"k{i}": "v" for i in range(100)}),
        _fields(labels={"k" * (MAX_LABEL_KEY_BYTES + 1): "v"}),
        _fields(labels={"feature": "v" * (MAX_LABEL_VALUE_BYTES + 1)}),
    ],
    "oversized_field": [
        _fields(client_id="c" * (MAX_FIELD_BYTES["client_id"] + 1)),
        _fields(model="m" * 100_000),
        _fields(error="e" * (MAX_FIELD_BYTES["error"] + 1)),
    ],
    "invalid_cost": [
        _fields(cost="twelve dollars"),
        _fields(cost="1e3"),
        _fields(cost="NaN"),
        _fields(cost="-1"),
        _fields(cost=""),
    ],
}


STALLS_THE_WORKER: Final[list[BadValue]] = [_cut(lambda valid: valid[: HEADER_LEN + 3])]
"""``malformed_avro`` that the engine reports as "Cannot parse UUID" (code 376) when another record follows
it in the block: the record is cut inside its event_id, the engine reads the next record's bytes as the
rest. ``consumers/sink.py`` does not count 376 as a data error, so the worker retries the block forever."""


def one_of_each(now_us: int) -> list[tuple[bytes | None, RejectReason]]:
    """The first variant of every reason: (value, expected dead-letter reason)."""
    return [(variants[0](now_us), reason) for reason, variants in VARIANTS.items()]
