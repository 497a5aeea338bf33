"""Every version of the usage event schema, indexed by the fingerprint that prefixes each message.

Single-object encoding carries the writer schema's CRC-64-AVRO fingerprint of its parsing canonical
form, so a consumer knows the writer schema without a registry service. Old versions stay here forever:
the worker must be able to read anything a producer ever wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, cast

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form


@dataclass(frozen=True, slots=True, eq=False)  # one object per version: identity is equality
class WriterSchema:
    version: int
    fingerprint: bytes
    """The 8 bytes that follow the ``C3 01`` marker on the wire."""
    plain: dict[str, Any]
    """fastavro's parsed form with logical types removed: event_time as int microseconds and event_id
    as str, which is what the hot paths hold and cheaper than datetime/UUID objects."""
    json_text: str
    """The schema as JSON, as written into an Avro object container header."""


def _load(version: int, family: str = "usage_event") -> WriterSchema:
    text = resources.files("usagemeter.schemas").joinpath(f"avro/{family}.v{version}.avsc").read_text()
    raw = json.loads(text)
    fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(parse_schema(raw)), "CRC-64-AVRO"))
    plain = cast(dict[str, Any], parse_schema(_without_logical_types(raw)))
    return WriterSchema(version, fp, plain, json.dumps(raw, separators=(",", ":")))


def _without_logical_types(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_without_logical_types(v) for v in node]
    return node


@cache
def all_versions() -> tuple[WriterSchema, ...]:
    found = []
    version = 1
    root = resources.files("usagemeter.schemas").joinpath("avro")
    while root.joinpath(f"usage_event.v{version}.avsc").is_file():
        found.append(_load(version))
        version += 1
    return tuple(found)


@cache
def alert_schema() -> WriterSchema:
    """The budget alert's schema (the alerts topic): one version so far, a new file for each change."""
    return _load(1, "budget_alert")


def by_version(version: int) -> WriterSchema:
    for schema in all_versions():
        if schema.version == version:
            return schema
    raise KeyError(f"no usage event schema version {version}")


@cache
def _fingerprint_index() -> dict[bytes, WriterSchema]:
    return {schema.fingerprint: schema for schema in all_versions()}


def by_fingerprint(fp: bytes) -> WriterSchema | None:
    return _fingerprint_index().get(fp)


CURRENT: WriterSchema = all_versions()[-1]
