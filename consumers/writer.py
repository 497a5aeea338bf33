"""Writes one batch to ClickHouse: every acceptable event inserted once, every other one dead-lettered.

The batch's cut of each partition goes to the ingest ledger first, with the reference time its time rules
are judged by. Then each (partition, writer schema) group becomes one Avro block and one insert, its
deduplication token naming the partition's slice, so a retry of the same batch, or the same slice read
again after a crash, is dropped by every table. The inserts run side by side on the sink's sessions:
each has its own token, so their order changes nothing a retry or a successor does. Once every insert
and dead letter is done, the ledger marks the slices completed. A batch whose share of bad messages
passes ``max_dead_letter_ratio`` is not dead-lettered: the writer raises, so that nothing is committed
and a person looks.
When the engine rejects a block, ``triage`` finds the bad messages in Python; the rest is inserted as
one block, and if the engine still refuses it (its rules and Python's disagree at an edge, such as a
time limit passing between the two), the block is bisected down to the messages it refuses.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from confluent_kafka import Message

from usagemeter.consumers import triage
from usagemeter.consumers.batch import Batch, SchemaGroup, value_of
from usagemeter.consumers.ports import DeadLetterPort, LedgerPort, SinkPort
from usagemeter.consumers.settings import WorkerSettings
from usagemeter.schemas import WriterSchema, by_fingerprint
from usagemeter.schemas.errors import BlockRejected, DeadLetterRatioExceeded, StoreUnavailable
from usagemeter.schemas.validation import Rejection
from usagemeter.schemas.wire import HEADER_LEN

log = logging.getLogger(__name__)
Inserted = tuple[int, list[tuple[Message, Rejection]], bool]
"""One group's outcome: events inserted, messages refused with why, whether it was triaged."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: int
    dead_lettered: int
    duplicates: int
    triaged_blocks: int
    rejected: set[tuple[str, int, int]] = field(default_factory=set)
    """(topic, partition, offset) of every dead-lettered message."""
    reasons: Counter[str] = field(default_factory=Counter)
    """Dead letters by rejection reason (a ``RejectReason``), for the metrics."""


class BatchWriter:
    def __init__(
        self, sink: SinkPort, ledger: LedgerPort, dead_letters: DeadLetterPort, settings: WorkerSettings
    ) -> None:
        self._sink = sink
        self._ledger = ledger
        self._dead_letters = dead_letters
        self._max_ratio = settings.max_dead_letter_ratio
        self._ratio_min_rows = settings.dead_letter_ratio_min_rows

    def write(self, batch: Batch) -> WriteResult:
        """Inserts every group, then makes the dead letters durable. Raises before anything is committed
        if either fails; the caller commits the batch's offsets only after this returns."""
        inserted = triaged = 0
        rejected: list[tuple[Message, Rejection]] = list(batch.invalid)
        slices = batch.slices()
        self._ledger.record(slices)
        inserts: list[Callable[[], Inserted]] = []
        for (where, fingerprint), group in batch.groups.items():
            if not group.messages:
                continue
            schema = by_fingerprint(fingerprint)
            if schema is None:
                reason = Rejection("unknown_schema", f"writer schema fingerprint {fingerprint.hex()} is not known")
                inserts.append(partial(_refused, [(msg, reason) for msg in group.messages]))
                continue
            token = batch.token(where, fingerprint)
            inserts.append(partial(self._insert_group, schema, group, token, batch.slice_of(where).reference_us))
        for ok, bad, was_triaged in self._run_side_by_side(inserts):
            inserted += ok
            triaged += was_triaged
            rejected.extend(bad)
        self._check_ratio(len(rejected), batch.size)
        for msg, rejection in rejected:
            self._dead_letters.send(msg, rejection)
        self._dead_letters.flush()
        self._ledger.complete(slices)
        where_rejected = {(str(m.topic()), int(m.partition() or 0), int(m.offset() or 0)) for m, _ in rejected}
        reasons = Counter[str](rejection.reason for _, rejection in rejected)
        return WriteResult(inserted, len(rejected), batch.duplicates, triaged, where_rejected, reasons)

    def _check_ratio(self, bad: int, size: int) -> None:
        if size >= self._ratio_min_rows and bad > self._max_ratio * size:
            raise DeadLetterRatioExceeded(
                f"{bad} of {size} messages in one batch are invalid, more than USAGEMETER_WORKER_MAX_DEAD_LETTER_RATIO"
                f" ({self._max_ratio:g}); stopping without committing them (see the log for the reasons)"
            )

    def _run_side_by_side(self, inserts: list[Callable[[], Inserted]]) -> list[Inserted]:
        """Each group's outcome, in the batch's order (so the dead letters keep it), as many at once as the sink
        has sessions. A failure is raised once every insert of the attempt has ended, so a retry never runs
        beside the attempt it repeats."""
        if self._sink.sessions == 1 or len(inserts) < 2:
            return [insert() for insert in inserts]
        threads = min(self._sink.sessions, len(inserts))
        with ThreadPoolExecutor(threads, thread_name_prefix="usagemeter-insert") as pool:
            futures = [pool.submit(insert) for insert in inserts]
        return [future.result() for future in futures]

    def _insert_group(self, schema: WriterSchema, group: SchemaGroup, token: str, reference_us: int) -> Inserted:
        try:
            self._sink.insert(schema, group.bodies, token)
            return len(group.bodies), [], False
        except BlockRejected as exc:
            log.warning("block of %d events rejected (%s); triaging", len(group.bodies), exc)
        good, bad = triage.split(schema, group.messages, reference_us)
        reasons = sorted({rejection.reason for _, rejection in bad})
        log.warning("triage: %d of %d events refused (%s)", len(bad), len(group.messages), ", ".join(reasons) or "none")
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
            self._sink.insert(schema, [value_of(msg)[HEADER_LEN:] for msg in messages], part_token)
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


def _refused(messages: list[tuple[Message, Rejection]]) -> Inserted:
    return 0, messages, False


@dataclass(slots=True)
class _Bisection:
    """What a bisection has seen so far: a few single events refused and nothing accepted means the
    store is failing (an error code ``sink`` does not list), and the batch is retried instead."""

    accepted: int = 0
    refused_singles: int = 0
