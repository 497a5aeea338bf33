"""The seams of the worker: what it asks of Kafka, the store and the dead-letter topic, and no more.

The real implementations are built in ``consumers/pipeline.py``; tests pass in-memory ones
(``tests/fixtures/memory_kafka.py``) so cuts, held messages and rebalances run without a broker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from confluent_kafka import Message, TopicPartition

from usagemeter.consumers.batch import Slice
from usagemeter.consumers.ledger import Candidates, RecentIds, Recorded, SeenId
from usagemeter.schemas import WriterSchema
from usagemeter.schemas.validation import Rejection

RebalanceCallback = Callable[[Any, list[TopicPartition]], None]
"""``on_assign``/``on_revoke``: called with the consumer and the partitions given or taken."""


class ConsumerPort(Protocol):
    """The subset of ``confluent_kafka.Consumer`` the worker calls."""

    def subscribe(
        self, topics: list[str], on_assign: RebalanceCallback = ..., on_revoke: RebalanceCallback = ...
    ) -> None: ...

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]: ...

    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[False]) -> list[TopicPartition]: ...

    def pause(self, partitions: list[TopicPartition]) -> None: ...

    def resume(self, partitions: list[TopicPartition]) -> None: ...

    def assignment(self) -> list[TopicPartition]: ...

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]: ...

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]: ...

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = ..., cached: bool = ...
    ) -> tuple[int, int]: ...

    def close(self) -> None: ...


class SinkPort(Protocol):
    """Inserts one writer-schema block; raises ``BlockRejected`` for bad data, ``StoreUnavailable`` to retry.
    ``sessions`` inserts may run at once, from as many threads."""

    @property
    def sessions(self) -> int: ...

    def insert(self, schema: WriterSchema, bodies: list[bytes], token: str) -> None: ...

    def close(self) -> None: ...


class LedgerPort(Protocol):
    """Where each batch was cut and which ids each partition inserted (consumers/ledger.py)."""

    def record(self, slices: Sequence[Slice]) -> None: ...

    def complete(self, slices: Sequence[Slice]) -> None: ...

    def last_slices(self, topic: str, partitions: Sequence[int]) -> dict[int, Recorded]: ...

    def recent_ids(
        self, topic: str, partition: int, since: datetime, excluding_slice: int | None
    ) -> Iterator[RecentIds]: ...

    def recent_counts(
        self, topic: str, partition: int, since: datetime, excluding_slice: int | None, bucket_s: float
    ) -> dict[int, int]: ...

    def seen_ids(self, topic: str, candidates: Candidates, since: datetime) -> set[SeenId]: ...


class DeadLetterPort(Protocol):
    """Sends a refused message with why; ``flush`` returns once Kafka acknowledged every one sent."""

    def send(self, msg: Message, rejection: Rejection) -> None: ...

    def flush(self, timeout_s: float = 30.0) -> None: ...
