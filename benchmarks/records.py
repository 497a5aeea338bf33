"""Simulated calls as the Avro record an emitter sends, for the benchmarks that produce or insert them."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from usagemeter.producers.simulation import simulated_calls

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def simulated_records(seed: int, count: int, *, spread: timedelta) -> Iterator[dict[str, Any]]:
    """``simulated_calls`` with a fresh event id each and the event time in microseconds, as the schema has it."""
    for call in simulated_calls(random.Random(seed), count, spread=spread):
        micros = (call["event_time"] - _EPOCH) // timedelta(microseconds=1)
        yield {**call, "event_id": str(uuid.uuid4()), "event_time": micros}
