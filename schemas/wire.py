"""Avro single-object encoding: ``C3 01``, the writer schema's 8-byte fingerprint, the plain Avro body.

The worker only looks at these 10 header bytes on its hot path; the bodies go to ClickHouse as they are.
"""

from __future__ import annotations

import io
from typing import Any, cast

from fastavro import schemaless_reader, schemaless_writer

from usagemeter.schemas.registry import WriterSchema, by_fingerprint

MAGIC = b"\xc3\x01"
HEADER_LEN = 10


def fingerprint_of(message: bytes) -> bytes | None:
    """The writer fingerprint, or None when the bytes are not single-object encoded Avro."""
    if len(message) <= HEADER_LEN or message[:2] != MAGIC:
        return None
    return message[2:HEADER_LEN]


def encode(schema: WriterSchema, record: dict[str, Any]) -> bytes:
    """One record as a single-object message in ``schema`` (event_time as int microseconds)."""
    buffer = io.BytesIO()
    buffer.write(MAGIC + schema.fingerprint)
    schemaless_writer(buffer, schema.plain, record)
    return buffer.getvalue()


def decode(message: bytes) -> dict[str, Any]:
    """The record of a single-object message in any known writer schema; ValueError when it is not one."""
    fp = fingerprint_of(message)
    schema = by_fingerprint(fp) if fp else None
    if schema is None:
        raise ValueError("not a single-object encoded usage event of a known schema version")
    return cast(dict[str, Any], schemaless_reader(io.BytesIO(message[HEADER_LEN:]), schema.plain, schema.plain))
