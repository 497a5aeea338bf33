"""Avro single-object encoding: ``C3 01``, the writer schema's 8-byte fingerprint, the plain Avro body.

The worker only looks at these 10 header bytes on its hot path; the bodies go to ClickHouse as they are.
"""

from __future__ import annotations

import io
from typing import Any

from fastavro import schemaless_writer

from usagemeter.schemas.registry import WriterSchema

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
