"""The specialised encoder writes fastavro's bytes, and raises where fastavro raises, for any event."""

from __future__ import annotations

import random
import string
from typing import Any

import pytest

from usagemeter.schemas import CURRENT
from usagemeter.schemas.encoder import encode_event
from usagemeter.schemas.wire import decode, encode

_LONGS = (
    0,
    1,
    -1,
    63,
    64,
    -64,
    -65,
    127,
    128,
    8191,
    8192,
    -8192,
    -8193,
    16383,
    16384,
    1 << 31,
    (1 << 63) - 1,
    -(1 << 63),
)
_TEXT = string.printable + "éß€漢字🙂\u0000\u200b"


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(_TEXT) for _ in range(rng.choice((0, 1, 5, 40, 300))))


def _value(rng: random.Random, avro_type: Any) -> Any:
    if isinstance(avro_type, dict) and avro_type["type"] != "map":
        avro_type = avro_type["type"]  # a logical type's base, as in CURRENT.plain
    if avro_type in ("long", "int"):
        return rng.choice((*_LONGS, rng.randint(-(1 << 62), 1 << 62), rng.randint(0, 10_000)))
    if avro_type == "string":
        return _text(rng)
    if isinstance(avro_type, list):
        return None if rng.random() < 0.5 else _text(rng)
    return {_text(rng): _text(rng) for _ in range(rng.choice((0, 1, 3, 70)))}


def _random_record(rng: random.Random) -> dict[str, Any]:
    """Every field present or absent at random, required ones always, in a random key order."""
    record = {}
    for field in CURRENT.plain["fields"]:
        if "default" not in field or rng.random() < 0.6:
            record[field["name"]] = _value(rng, field["type"])
    items = list(record.items())
    rng.shuffle(items)
    return dict(items)


def _outcome(encoder: Any, record: dict[str, Any]) -> bytes | type[BaseException]:
    try:
        return bytes(encoder(record))
    except Exception as exc:
        return type(exc)


def test_the_bytes_of_fastavro_for_random_events() -> None:
    rng = random.Random(15)
    for _ in range(3000):
        record = _random_record(rng)
        expected = encode(CURRENT, record)
        assert encode_event(record) == expected, record
        assert decode(expected) is not None  # what the worker and the engine read back


BASE = {
    "event_id": "0b5c3d1e-2f4a-4b6c-8d9e-0a1b2c3d4e5f",
    "event_time": 1_764_670_000_000_000,
    "client_id": "a",
    "model": "m",
}


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({}, id="only the required fields"),
        pytest.param({"latency_ms": (1 << 63) - 1, "input_tokens": -(1 << 63)}, id="64-bit limits"),
        pytest.param({"latency_ms": 1 << 63}, id="an int over 64 bits"),
        pytest.param({"requests": 1 << 31}, id="an int field over 32 bits"),
        pytest.param({"requests": -(1 << 31)}, id="an int field at its lower limit"),
        pytest.param({"input_tokens": True}, id="a bool for a long"),
        pytest.param({"input_tokens": 1.0}, id="a float for a long"),
        pytest.param({"input_tokens": "10"}, id="a str for a long"),
        pytest.param({"cost": None, "labels": {}}, id="explicit null and empty map"),
        pytest.param({"cost": "0.04"}, id="a cost"),
        pytest.param({"cost": 4}, id="an int for an optional string"),
        pytest.param({"labels": {"feature": "sümmarise", "🙂": ""}}, id="unicode labels"),
        pytest.param({"labels": {"a": 1}}, id="a label that is not a str"),
        pytest.param({"labels": [("a", "b")]}, id="labels that are not a dict"),
        pytest.param({"user_id": "\ud800"}, id="a lone surrogate"),
        pytest.param({"user_id": None}, id="None for a string"),
        pytest.param({"model": "漢字" * 1000}, id="a long unicode string"),
        pytest.param({"unknown": 1}, id="a key the schema lacks is ignored"),
        pytest.param({"client_id": None}, id="a required field None"),
    ],
)
def test_an_edge_event_is_encoded_or_refused_as_fastavro_does(changes: dict[str, Any]) -> None:
    record = {**BASE, **changes}
    assert _outcome(encode_event, record) == _outcome(lambda r: encode(CURRENT, r), record)


def test_a_record_lacking_a_required_field_is_refused_as_fastavro_does() -> None:
    record = {k: v for k, v in BASE.items() if k != "client_id"}
    assert _outcome(encode_event, record) == _outcome(lambda r: encode(CURRENT, r), record)


def test_repeated_strings_past_the_cache_bound_stay_right() -> None:
    for n in range(10_000):
        record = {**BASE, "user_id": f"user-{n}", "service": "s" if n % 2 else "t"}
        assert encode_event(record) == encode(CURRENT, record)
