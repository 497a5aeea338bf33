"""Joins single-object-encoded bodies of one writer schema into an Avro object container file.

A container is a header (magic, metadata map holding the schema, a sync marker) and blocks of
(record count, byte length, the bodies back to back, the sync marker). Bodies need no re-encoding: this is
how the worker hands ClickHouse thousands of events without decoding one of them in Python.
"""

from __future__ import annotations

from functools import cache

from usagemeter.schemas import WriterSchema

_SYNC = b"usagemeter.sync!"  # any 16 bytes; fixed so that identical batches give identical blocks


def zigzag_long(value: int) -> bytes:
    """Avro's variable-length zig-zag encoding of a long."""
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _avro_bytes(data: bytes) -> bytes:
    return zigzag_long(len(data)) + data


@cache
def container_header(schema: WriterSchema) -> bytes:
    metadata = {b"avro.schema": schema.json_text.encode(), b"avro.codec": b"null"}
    entries = b"".join(_avro_bytes(k) + _avro_bytes(v) for k, v in metadata.items())
    return b"Obj\x01" + zigzag_long(len(metadata)) + entries + zigzag_long(0) + _SYNC


def container(schema: WriterSchema, bodies: list[bytes]) -> bytes:
    """One container with one block holding ``bodies`` (plain Avro record encodings)."""
    payload = b"".join(bodies)
    return b"".join((container_header(schema), zigzag_long(len(bodies)), zigzag_long(len(payload)), payload, _SYNC))
