"""Reading alerts back for the exactly-once tests: from the alerts topic, and as alert ids per crossing."""

from __future__ import annotations

import io
import time
import uuid
from collections import defaultdict
from typing import Any

import fastavro
from confluent_kafka import Consumer

from usagemeter.schemas.registry import alert_schema
from usagemeter.schemas.wire import HEADER_LEN


def topic_alerts(bootstrap: str, topic: str, expected: int, timeout_s: float = 60) -> list[dict[str, Any]]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"alerts-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    schema = alert_schema().plain
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    quiet_until = None
    while time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.error():
            if len({(r["client_id"], t) for r in found for t in r["thresholds"]}) >= expected:
                quiet_until = quiet_until or time.monotonic() + 3
                if time.monotonic() > quiet_until:
                    break
            continue
        value, key = message.value(), message.key()
        assert value is not None and key is not None
        record = fastavro.schemaless_reader(io.BytesIO(value[HEADER_LEN:]), schema, None)
        assert isinstance(record, dict) and record["alert_id"] == key.decode()
        found.append(record)
    consumer.close()
    return found


def ids_per_threshold(items: list[tuple[str, str, list[str]]]) -> dict[tuple[str, str], set[str]]:
    found: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for alert_id, client, thresholds in items:
        for threshold in thresholds:
            found[(client, threshold)].add(alert_id)
    return found
