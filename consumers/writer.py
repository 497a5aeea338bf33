"""Writes one batch to ClickHouse: every acceptable event inserted once, every other one dead-lettered.

The batch's cut of each partition goes to the ingest ledger first. Then each (partition, writer schema)
group becomes one Avro block and one insert, its deduplication token naming the partition's slice, so a
retry of the same batch, or the same slice read again after a crash, is dropped by every table.
When the engine rejects a block, ``triage`` finds the bad messages in Python; the rest is inserted as
one block, and if the engine still refuses it (its rules and Python's disagree at an edge, such as a
time limit passing between the two), the block is bisected down to the messages it refuses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from confluent_kafka import Message

from usagemeter.consumers import triage
from usagemeter.consumers.avro_block import container
from usagemeter.consumers.batch import Batch, SchemaGroup, value_of
from usagemeter.consumers.clock import Clock
from usagemeter.consumers.dead_letters import DeadLetters
from usagemeter.consumers.errors import BlockRejected, StoreUnavailable
from usagemeter.consumers.ledger import Ledger
from usagemeter.consumers.sink import ClickHouseSink
from usagemeter.schemas import WriterSchema, by_fingerprint
from usagemeter.schemas.validation import Rejection
from usagemeter.schemas.wire import HEADER_LEN

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: int
    dead_lettered: int
    duplicates: int
    triaged_blocks: int
    rejected: set[tuple[str, int, int]] = field(default_factory=set)
    """(topic, partition, offset) of every dead-lettered message."""


class BatchWriter:
    def __init__(self, sink: ClickHouseSink, ledger: Ledger, dead_letters: DeadLetters, clock: Clock) -> None:
        self._sink = sink
        self._ledger = ledger
        self._dead_letters = dead_letters
        self._clock = clock

    def write(self, batch: Batch) -> WriteResult:
        """Inserts every group, then makes the dead letters durable. Raises before anything is committed
        if either fails; the caller commits the batch's offsets only after this returns."""
        inserted = triaged = 0
        rejected: list[tuple[Message, Rejection]] = list(batch.invalid)
        self._ledger.record(batch.slices())
        for (where, fingerprint), group in batch.groups.items():
            if not group.messages:
                continue
            schema = by_fingerprint(fingerprint)
            if schema is None:
                reason = Rejection("unknown_schema", f"writer schema fingerprint {fingerprint.hex()} is not known")
                rejected.extend((msg, reason) for msg in group.messages)
                continue
            ok, bad, was_triaged = self._insert_group(schema, group, batch.token(where, fingerprint))
            inserted += ok
            triaged += was_triaged
            rejected.extend(bad)
        for msg, rejection in rejected:
            self._dead_letters.send(msg, rejection)
        self._dead_letters.flush()
        where_rejected = {(str(m.topic()), int(m.partition() or 0), int(m.offset() or 0)) for m, _ in rejected}
        return WriteResult(inserted, len(rejected), batch.duplicates, triaged, where_rejected)

    def _insert_group(
        self, schema: WriterSchema, group: SchemaGroup, token: str
    ) -> tuple[int, list[tuple[Message, Rejection]], bool]:
        try:
            self._sink.insert(container(schema, group.bodies), token)
            return len(group.bodies), [], False
        except BlockRejected as exc:
            log.warning("block of %d events rejected (%s); triaging", len(group.bodies), exc)
        good, bad = triage.split(schema, group.messages, self._clock.now_us())
        refused = self._insert_bisecting(schema, good, f"{token}|triaged", _Bisection())
        return len(good) - len(refused), bad + refused, True

    def _insert_bisecting(
        self, schema: WriterSchema, messages: list[Message], token: str, tally: _Bisection
    ) -> list[tuple[Message, Rejection]]:
        if not messages:
            return []
        first, last = messages[0], messages[-1]
        part_token = f"{token}|{first.partition()}:{first.offset()}-{last.partition()}:{last.offset()}|{len(messages)}"
        try:
            self._sink.insert(_block(schema, messages), part_token)
            tally.accepted += 1
            return []
        except BlockRejected as exc:
            if len(messages) == 1:
                tally.refused_singles += 1
                if not tally.accepted and tally.refused_singles >= _STORE_SUSPECT_AFTER:
                    # The engine refuses every event Python accepts, one by one: the store, not the data.
                    raise StoreUnavailable(f"engine refuses events that pass validation: {exc}") from exc
                return [(messages[0], Rejection("rejected_by_engine", str(exc)))]
        mid = len(messages) // 2
        return self._insert_bisecting(schema, messages[:mid], token, tally) + self._insert_bisecting(
            schema, messages[mid:], token, tally
        )


_STORE_SUSPECT_AFTER = 8


@dataclass(slots=True)
class _Bisection:
    """What a bisection has seen so far: a few single events refused and nothing accepted means the
    store is failing (an error code ``sink`` does not list), and the batch is retried instead."""

    accepted: int = 0
    refused_singles: int = 0


def _block(schema: WriterSchema, messages: list[Message]) -> bytes:
    return container(schema, [value_of(msg)[HEADER_LEN:] for msg in messages])
