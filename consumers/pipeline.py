"""The worker assembled from settings: its real Kafka consumer, dead-letter producer, ledger and sink.

The one place the real ends are built (snuba's ``strategy_factory.py``), read in the order a batch meets
them: consumed from Kafka, cut and recorded in the ledger, inserted by the sink, refused messages sent
to the dead-letter topic, marked complete in the ledger, then committed (``Worker._complete``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Producer

from usagemeter.consumers.dead_letters import DeadLetters
from usagemeter.consumers.ledger import Ledger
from usagemeter.consumers.metrics import WorkerMetrics
from usagemeter.consumers.settings import KafkaSettings, WorkerSettings
from usagemeter.consumers.sink import ClickHouseSink
from usagemeter.consumers.store import more_sessions
from usagemeter.consumers.worker import Worker
from usagemeter.consumers.writer import WriteResult
from usagemeter.schemas.clock import SYSTEM_CLOCK, Clock

_RECONNECT_BACKOFF_MS = 500
"""A broker gone is retried at most every 0.5-10 s (librdkafka: 0.1-10 s), so a worker waiting for it idles."""

_CONSUMER_DEFAULTS: dict[str, Any] = {
    "log.connection.close": False,  # idle connections closed by the broker are normal, not news
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "fetch.max.bytes": 64 * 1024 * 1024,
    # Small enough that one fetch spans every partition: a worker restarted often still reaches them all.
    "max.partition.fetch.bytes": 2 * 1024 * 1024,
    "queued.max.messages.kbytes": 256 * 1024,
    "fetch.wait.max.ms": 100,
    "reconnect.backoff.ms": _RECONNECT_BACKOFF_MS,
}


def build_worker(
    kafka: KafkaSettings,
    settings: WorkerSettings,
    client: Client,
    *,
    clock: Clock = SYSTEM_CLOCK,
    on_flush: Callable[[WriteResult], None] | None = None,
    metrics: WorkerMetrics | None = None,
) -> Worker:
    """A worker on the real broker and store; ``client`` is the worker's own ClickHouse session, and the
    sink opens ``insert_sessions - 1`` more on the same store (closed when ``Worker.run`` ends)."""
    return Worker(
        kafka_consumer(kafka),
        DeadLetters(dead_letter_producer(kafka, settings), kafka.dlq_topic, settings.dead_letter_max_bytes),
        ClickHouseSink(client, more_sessions(client, settings.insert_sessions - 1)),
        Ledger(client),
        settings,
        topic=kafka.topic,
        clock=clock,
        on_flush=on_flush,
        metrics=metrics,
    )


def kafka_consumer(kafka: KafkaSettings) -> Consumer:
    """The group member: offsets committed by the worker only, after the rows they cover are stored."""
    static = {"group.instance.id": kafka.group_instance_id} if kafka.group_instance_id else {}
    return Consumer({**_CONSUMER_DEFAULTS, **kafka.client_config(), "group.id": kafka.group_id, **static})


def dead_letter_producer(kafka: KafkaSettings, settings: WorkerSettings) -> Producer:
    """Idempotent and acknowledged by all replicas: a dead letter is durable before its offset is committed."""
    return Producer(
        {
            **kafka.client_config(),
            "enable.idempotence": True,
            "acks": "all",
            "log.connection.close": False,
            "message.max.bytes": settings.dead_letter_max_bytes,
            "reconnect.backoff.ms": _RECONNECT_BACKOFF_MS,
        }
    )
