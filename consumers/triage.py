"""The fallback path: decode the messages of a rejected block in Python to find which were bad.

Runs only when ClickHouse refused a block, so its per-event cost (fastavro, ~10 µs) is paid for
blocks holding a bad event, never on the hot path. The rules are schemas/validation.py's, the same
ones the staging view enforces.
"""

from __future__ import annotations

import io
from typing import Any, cast

from confluent_kafka import Message
from fastavro import schemaless_reader

from usagemeter.consumers.batch import value_of
from usagemeter.schemas import WriterSchema, check_record
from usagemeter.schemas.validation import Rejection
from usagemeter.schemas.wire import HEADER_LEN


def decode(schema: WriterSchema, value: bytes) -> dict[str, Any] | Rejection:
    """The record a single-object message holds, or why it cannot be read."""
    body = io.BytesIO(value[HEADER_LEN:])
    try:
        record: Any = schemaless_reader(body, schema.plain, None)
    except UnicodeDecodeError as exc:
        return Rejection("not_utf8", f"a string field is not valid UTF-8 ({exc.reason})")
    except (EOFError, ValueError, IndexError, OverflowError, MemoryError) as exc:
        return Rejection("malformed_avro", f"truncated or corrupt Avro body ({type(exc).__name__}: {exc})"[:300])
    if body.tell() != len(value) - HEADER_LEN:
        return Rejection("malformed_avro", f"{len(value) - HEADER_LEN - body.tell()} bytes after the record")
    return cast(dict[str, Any], record)


def split(
    schema: WriterSchema, messages: list[Message], now_us: int
) -> tuple[list[Message], list[tuple[Message, Rejection]]]:
    """Messages the engine should accept, and the others with the first rule each one breaks."""
    good: list[Message] = []
    bad: list[tuple[Message, Rejection]] = []
    for msg in messages:
        decoded = decode(schema, value_of(msg))
        problem = decoded if isinstance(decoded, Rejection) else check_record(decoded, now_us)
        if problem is None:
            good.append(msg)
        else:
            bad.append((msg, problem))
    return good, bad
