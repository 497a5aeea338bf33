"""Containers joined from single-object bodies read back, with fastavro, as the records that were encoded."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import fastavro
import pytest
from fastavro import schemaless_writer

from usagemeter.consumers import avro_block
from usagemeter.schemas import WriterSchema
from usagemeter.schemas.registry import all_versions
from usagemeter.schemas.wire import HEADER_LEN, encode

BASE_US = 1_760_000_000_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def _record(schema: WriterSchema, i: int) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event_id": str(uuid.UUID(int=i)),
        "event_time": BASE_US + i,
        "client_id": f"client-{i % 7}",
        "user_id": f"user-{i}",
        "request_id": "",
        "session_id": "s" * (i % 50),
        "service": "svc",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "operation": "chat",
        "status": "ok",
        "error": "",
        "latency_ms": i * 3,
        "input_tokens": i * 1000,
        "output_tokens": i,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "input_audio_tokens": 0,
        "output_audio_tokens": 0,
        "total_tokens": 0,
        "requests": 1,
        "web_searches": i % 3,
        "tool_calls": 0,
        "cost": None if i % 2 else f"{i}.5",
        "labels": {"n": str(i)} if i % 4 else {},
    }
    if schema.version >= 2:
        record |= {"cache_write_1h_tokens": 0, "service_tier": "flex" if i % 5 == 0 else "", "cost_label": "x"}
    return record


TOKEN = "abc|usage.events/0:1-2|t=5"


def _read(container: bytes) -> list[dict[str, Any]]:
    """The container's records with logical types undone (the header's schema has them, the records had
    not), each checked for the marker of ``TOKEN`` and returned without it."""
    records = cast(list[dict[str, Any]], list(fastavro.reader(io.BytesIO(container))))
    assert all(record.pop("usagemeter_marker") == avro_block.marker_of(TOKEN) for record in records)
    return [
        record | {"event_id": str(record["event_id"]), "event_time": (record["event_time"] - EPOCH) // MICROSECOND}
        for record in records
    ]


@pytest.mark.parametrize("count", [pytest.param(1, id="one record"), pytest.param(1_000, id="1,000 records")])
@pytest.mark.parametrize("schema", [pytest.param(s, id=f"v{s.version}") for s in all_versions()])
def test_a_container_of_bodies_reads_back_as_the_same_records(schema: WriterSchema, count: int) -> None:
    records = [_record(schema, i) for i in range(count)]
    bodies = [encode(schema, record)[HEADER_LEN:] for record in records]

    container = avro_block.container(schema, bodies, TOKEN)

    assert _read(container) == records
    header = fastavro.reader(io.BytesIO(container))
    assert header.codec == "null"
    written = json.loads(header.metadata["avro.schema"])
    assert written["fields"] == [*json.loads(schema.json_text)["fields"], avro_block.MARKER_FIELD]


def test_an_empty_list_of_bodies_gives_a_container_without_records() -> None:
    schema = all_versions()[-1]
    assert _read(avro_block.container(schema, [], TOKEN)) == []


def test_identical_bodies_give_identical_containers() -> None:
    schema = all_versions()[-1]
    bodies = [encode(schema, _record(schema, i))[HEADER_LEN:] for i in range(10)]
    assert avro_block.container(schema, bodies, TOKEN) == avro_block.container(schema, list(bodies), TOKEN)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(0, id="zero"),
        pytest.param(1, id="one"),
        pytest.param(-1, id="minus one"),
        pytest.param(63, id="63 (largest one-byte positive)"),
        pytest.param(64, id="64 (first two-byte positive)"),
        pytest.param(-64, id="-64 (largest one-byte negative)"),
        pytest.param(-65, id="-65 (first two-byte negative)"),
        pytest.param(2**31, id="2**31"),
        pytest.param(-(2**63), id="min long"),
        pytest.param(2**63 - 1, id="max long"),
    ],
)
def test_zigzag_long_matches_fastavro(value: int) -> None:
    expected = io.BytesIO()
    schemaless_writer(expected, "long", value)
    assert avro_block.zigzag_long(value) == expected.getvalue()
    assert fastavro.schemaless_reader(io.BytesIO(avro_block.zigzag_long(value)), "long") == value
