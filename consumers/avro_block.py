"""Joins single-object-encoded bodies of one writer schema into an Avro object container file.

A container is a header (magic, metadata map holding the schema, a sync marker) and blocks of
(record count, byte length, the bodies back to back, the sync marker). Bodies need no re-encoding: this is
how the worker hands ClickHouse thousands of events without decoding one of them in Python.

ClickHouse reads a block by its record count, so a body holding two records or trailing bytes would shift
every record after it: a phantom stored, the last real one dropped, no error. So each body is followed by
a 16-byte marker, and the container's schema is the writer schema plus a last field ``usagemeter_marker``
(``fixed(16)``): a record read from the wrong place reads its marker from the wrong bytes, and the staging
view refuses the block (0012_usage_events_from_staging.sql). The marker is derived from the insert's
deduplication token, which the view reads too; it costs one hash per insert and no per-event work. It is
hex text, so that an engine error quoting it stays UTF-8 (the chDB client drops the code of one that is not).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache

from usagemeter.schemas import WriterSchema

_SYNC = b"usagemeter.sync!"  # any 16 bytes; fixed so that identical batches give identical blocks
MARKER_FIELD = {"name": "usagemeter_marker", "type": {"type": "fixed", "name": "UsagemeterMarker", "size": 16}}


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


def marker_of(token: str) -> bytes:
    """What the staging view expects after each body of an insert with this token: SHA-256's first 8 bytes
    as 16 lower-case hex digits."""
    return hashlib.sha256(token.encode()).hexdigest()[:16].encode()


@cache
def container_header(schema: WriterSchema) -> bytes:
    marked = json.loads(schema.json_text)
    marked["fields"] = [*marked["fields"], MARKER_FIELD]
    metadata = {b"avro.schema": json.dumps(marked, separators=(",", ":")).encode(), b"avro.codec": b"null"}
    entries = b"".join(_avro_bytes(k) + _avro_bytes(v) for k, v in metadata.items())
    return b"Obj\x01" + zigzag_long(len(metadata)) + entries + zigzag_long(0) + _SYNC


def container(schema: WriterSchema, bodies: list[bytes], token: str) -> bytes:
    """One container with one block holding ``bodies`` (plain Avro record encodings), each followed by the
    marker of ``token``, the deduplication token the block is inserted with."""
    marker = marker_of(token)
    payload = marker.join(bodies) + marker if bodies else b""
    return b"".join((container_header(schema), zigzag_long(len(bodies)), zigzag_long(len(payload)), payload, _SYNC))
