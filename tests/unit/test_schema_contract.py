"""The schema contract: every version kept, readable, fingerprinted as the single-object encoding says."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Any, cast

import pytest
from fastavro import parse_schema, schemaless_reader
from fastavro.schema import fingerprint, to_parsing_canonical_form
from pydantic import ValidationError

from usagemeter.schemas import CURRENT, UsageEvent, WriterSchema, by_fingerprint, by_version, check_record
from usagemeter.schemas.registry import all_versions
from usagemeter.schemas.wire import HEADER_LEN, MAGIC, encode, fingerprint_of

EVENT_TIME_US = 1_760_000_000_123_456
FULL_RECORD: dict[str, Any] = {
    "event_id": "6f1c1c8e-3d2a-4b8e-9a57-0c1d2e3f4a5b",
    "event_time": EVENT_TIME_US,
    "client_id": "acme",
    "user_id": "u-1",
    "request_id": "req-1",
    "session_id": "sess-1",
    "service": "chat-api",
    "provider": "anthropic",
    "model": "claude-sonnet-4",
    "operation": "responses",
    "status": "error",
    "error": "Overloaded",
    "latency_ms": 1234,
    "input_tokens": 5000,
    "output_tokens": 700,
    "cache_read_tokens": 1000,
    "cache_write_tokens": 500,
    "reasoning_tokens": 300,
    "input_audio_tokens": 20,
    "output_audio_tokens": 10,
    "total_tokens": 5700,
    "requests": 2,
    "web_searches": 3,
    "tool_calls": 4,
    "cost": "0.012345678901234567",
    "labels": {"feature": "search", "env": "prod", "ünïcode": "välue"},
    "cache_write_1h_tokens": 200,
    "service_tier": "priority",
    "cost_label": "DALL-E 3 Image",
}
"""Every field of every version, none at its default."""

VERSIONS = [pytest.param(schema, id=f"v{schema.version}") for schema in all_versions()]


def _read(body: io.BytesIO, writer: Any, reader: Any = None) -> dict[str, Any]:
    return cast(dict[str, Any], schemaless_reader(body, writer, reader))


def _avsc(version: int) -> dict[str, Any]:
    text = resources.files("usagemeter.schemas").joinpath(f"avro/usage_event.v{version}.avsc").read_text()
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def _fields(version: int) -> dict[str, dict[str, Any]]:
    return {field["name"]: field for field in _avsc(version)["fields"]}


def _rabin_64(data: bytes) -> int:
    """CRC-64-AVRO written from the Avro specification, independently of fastavro."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    result = empty
    for byte in data:
        result = (result >> 8) ^ table[(result ^ byte) & 0xFF]
    return result


def test_there_are_at_least_two_versions_numbered_from_one() -> None:
    assert [schema.version for schema in all_versions()] == list(range(1, len(all_versions()) + 1))
    assert len(all_versions()) >= 2


@pytest.mark.parametrize("schema", VERSIONS)
def test_a_full_record_round_trips_through_the_wire_format(schema: WriterSchema) -> None:
    record = {name: FULL_RECORD[name] for name in _fields(schema.version)}
    message = encode(schema, record)

    assert message[:2] == MAGIC
    assert fingerprint_of(message) == schema.fingerprint
    body = io.BytesIO(message[HEADER_LEN:])
    decoded = _read(body, schema.plain)
    assert decoded == record
    assert body.tell() == len(message) - HEADER_LEN, "bytes left after the record"


@pytest.mark.parametrize("schema", VERSIONS)
def test_logical_types_read_back_as_uuid_and_timestamp(schema: WriterSchema) -> None:
    record = {name: FULL_RECORD[name] for name in _fields(schema.version)}
    decoded = _read(io.BytesIO(encode(schema, record)[HEADER_LEN:]), parse_schema(_avsc(schema.version)))
    assert str(decoded["event_id"]) == FULL_RECORD["event_id"]
    assert decoded["event_time"] == datetime.fromtimestamp(EVENT_TIME_US / 1e6, UTC).replace(microsecond=123_456)


@pytest.mark.parametrize("schema", VERSIONS)
def test_the_fingerprint_is_fastavros_crc_64_avro_of_the_canonical_form(schema: WriterSchema) -> None:
    canonical = to_parsing_canonical_form(parse_schema(_avsc(schema.version)))
    assert len(schema.fingerprint) == 8
    assert schema.fingerprint == bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    # The single-object encoding puts the fingerprint on the wire little-endian (Avro specification).
    assert schema.fingerprint == _rabin_64(canonical.encode()).to_bytes(8, "little")


def test_fingerprints_differ_between_versions() -> None:
    fingerprints = [schema.fingerprint for schema in all_versions()]
    assert len(set(fingerprints)) == len(fingerprints)


@pytest.mark.parametrize("schema", VERSIONS)
def test_by_fingerprint_and_by_version_find_each_version(schema: WriterSchema) -> None:
    assert by_fingerprint(schema.fingerprint) is schema
    assert by_version(schema.version) is schema


def test_unknown_fingerprints_and_versions_are_not_found() -> None:
    assert by_fingerprint(b"\x00" * 8) is None
    assert by_fingerprint(CURRENT.fingerprint[:7]) is None
    with pytest.raises(KeyError):
        by_version(len(all_versions()) + 1)


def test_the_current_schema_is_the_highest_version() -> None:
    assert CURRENT is all_versions()[-1]
    assert CURRENT.version == max(schema.version for schema in all_versions())


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(older.version, newer.version, id=f"v{older.version} to v{newer.version}")
        for older, newer in zip(all_versions(), all_versions()[1:], strict=False)
    ],
)
def test_a_later_version_keeps_every_field_and_defaults_the_new_ones(old: int, new: int) -> None:
    old_fields, new_fields = _fields(old), _fields(new)
    for name, field in old_fields.items():
        assert name in new_fields, f"{name} dropped in v{new}"
        assert new_fields[name]["type"] == field["type"], f"{name} changed type in v{new}"
    for name in new_fields.keys() - old_fields.keys():
        assert "default" in new_fields[name], f"{name} added in v{new} without a default"


@pytest.mark.parametrize("schema", VERSIONS[:-1])
def test_an_old_message_reads_with_the_current_schema_as_reader(schema: WriterSchema) -> None:
    record = {name: FULL_RECORD[name] for name in _fields(schema.version)}
    body = io.BytesIO(encode(schema, record)[HEADER_LEN:])
    decoded = _read(body, schema.plain, CURRENT.plain)
    added = {name: field["default"] for name, field in _fields(CURRENT.version).items() if name not in record}
    assert decoded == record | added


def _event_kwargs(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"client_id": "acme", "model": "gpt-4o", "input_tokens": 100, "output_tokens": 10}
    return kwargs | overrides


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        pytest.param({"client_id": ""}, "missing_client_id", id="empty client_id"),
        pytest.param({"model": ""}, "missing_model", id="empty model"),
        pytest.param({"input_tokens": -1}, "negative_count", id="negative input tokens"),
        pytest.param({"output_tokens": 1_000_000_001}, "absurd_count", id="billion output tokens"),
        pytest.param({"cache_read_tokens": 101}, "inconsistent_tokens", id="cache reads above input"),
        pytest.param({"total_tokens": 50}, "inconsistent_tokens", id="total below input plus output"),
        pytest.param({"operation": "fax"}, "unknown_operation", id="unknown operation"),
        pytest.param({"status": "meh"}, "unknown_status", id="unknown status"),
        pytest.param({"labels": {"k" * 129: "v"}}, "oversized_labels", id="label key too long"),
        pytest.param({"cost": Decimal("1000000.1")}, "invalid_cost", id="cost above a million"),
        pytest.param({"cost": Decimal("0.0000000000000000001")}, "invalid_cost", id="cost with 19 decimals"),
        pytest.param({"event_time": datetime(2000, 1, 1, tzinfo=UTC)}, "event_time_too_old", id="event in 2000"),
    ],
)
def test_the_model_rejects_what_check_record_rejects(overrides: dict[str, Any], reason: str) -> None:
    kwargs = _event_kwargs(**overrides)
    record = {"event_id": "0", "event_time": time.time_ns() // 1000, "cost": None, "labels": {}} | kwargs
    if isinstance(record["event_time"], datetime):
        record["event_time"] = int(record["event_time"].timestamp() * 1_000_000)
    if isinstance(record["cost"], Decimal):
        record["cost"] = format(record["cost"], "f")
    problem = check_record(record, time.time_ns() // 1000)
    assert problem is not None and problem.reason == reason
    with pytest.raises(ValidationError):
        UsageEvent(**kwargs)


def test_the_model_accepts_a_full_valid_event() -> None:
    event = UsageEvent(**_event_kwargs(cost=Decimal("0.5"), labels={"env": "prod"}, cache_read_tokens=100))
    record = event.to_record()
    assert check_record(record, time.time_ns() // 1000) is None
    assert record["cost"] == "0.5"


def test_to_record_encodes_with_the_current_schema() -> None:
    at = datetime(2025, 6, 1, 12, 0, 0, 654_321, tzinfo=UTC)
    event = UsageEvent(
        **_event_kwargs(event_time=at, cost=Decimal("1.25"), cache_write_1h_tokens=0, service_tier="batch")
    )
    record = event.to_record()
    assert set(record) == set(_fields(CURRENT.version))
    message = encode(CURRENT, record)
    assert fingerprint_of(message) == CURRENT.fingerprint
    decoded = _read(io.BytesIO(message[HEADER_LEN:]), CURRENT.plain)
    assert decoded == record
    assert decoded["event_id"] == str(event.event_id)
    assert decoded["event_time"] == int(at.timestamp()) * 1_000_000 + 654_321
    assert decoded["cost"] == "1.25"
    assert decoded["service_tier"] == "batch"


def test_a_naive_event_time_is_taken_as_utc() -> None:
    event = UsageEvent(**_event_kwargs(event_time=datetime(2025, 6, 1, 12, 0, 0)))
    assert event.to_record()["event_time"] == int(datetime(2025, 6, 1, 12, tzinfo=UTC).timestamp()) * 1_000_000
