"""``usagemeter topics create``: the events topic, its dead-letter topic and the alerts topic, made once, safely again.

``worker`` and ``serve`` call ``ensure_topics`` at start too (unless USAGEMETER_KAFKA_CREATE_TOPICS=false,
for operators who manage topics), because a consumer subscribed to a missing topic fails and a worker
whose DLQ is missing fails at its first bad event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from usagemeter.budgets.settings import AlertSettings
from usagemeter.consumers.settings import KafkaSettings
from usagemeter.schemas.errors import TopicsError

app = typer.Typer(help="Kafka topics: create the events topic and its DLQ.", no_args_is_help=True)

_HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic to make; None leaves a value to the broker's defaults (num.partitions, retention...)."""

    name: str
    partitions: int | None = None
    replication_factor: int | None = None
    retention_hours: float | None = None
    compacted: bool = False
    """Kept per key as well as by time: the alerts topic, whose key is the alert id, keeps one of each."""

    def new_topic(self) -> NewTopic:
        config = {"retention.ms": str(round(self.retention_hours * _HOUR_MS))} if self.retention_hours else {}
        if self.compacted:
            config["cleanup.policy"] = "compact,delete"
        return NewTopic(self.name, num_partitions=self.partitions or -1,
                        replication_factor=self.replication_factor or -1, config=config)  # fmt: skip


def ensure_topics(kafka: KafkaSettings, specs: list[TopicSpec], timeout_s: float = 30.0) -> dict[str, bool]:
    """Create the topics that are missing; ``{name: created}`` (False: it existed, left as it is)."""
    admin = AdminClient({**kafka.client_config(), "socket.connection.setup.timeout.ms": 5000})
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        raise TopicsError(f"cannot list topics on {kafka.bootstrap_servers}: {exc.args[0].str()}") from exc
    result = {spec.name: False for spec in specs if spec.name in existing}
    missing = [spec.new_topic() for spec in specs if spec.name not in existing]
    if not missing:
        return result
    for name, future in admin.create_topics(missing, operation_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
            result[name] = True
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:  # made by another worker meanwhile: fine
                raise TopicsError(f"cannot create topic {name!r} on {kafka.bootstrap_servers}: {error.str()}") from exc
            result[name] = False
    return result


def default_specs(kafka: KafkaSettings) -> list[TopicSpec]:
    """What ``worker``/``serve`` make when missing: the broker's defaults, a one-partition DLQ and alerts topic."""
    alerts = TopicSpec(AlertSettings().topic, partitions=1, compacted=True)
    return [TopicSpec(kafka.topic), TopicSpec(kafka.dlq_topic, partitions=1), alerts]


def describe(result: dict[str, bool]) -> list[str]:
    return [f"created topic {name}" if created else f"topic {name} exists already" for name, created in result.items()]


@app.command()
def create(
    partitions: Annotated[
        int | None,
        typer.Option(min=1, help="Partitions of the events topic (at most one worker each) [default: broker's]."),
    ] = None,
    dlq_partitions: Annotated[int, typer.Option(min=1, help="Partitions of the dead-letter topic.")] = 1,
    replication_factor: Annotated[
        int | None,
        typer.Option(min=1, help="Copies of each partition (3 on a production cluster) [default: broker's]."),
    ] = None,
    retention_hours: Annotated[
        float | None, typer.Option(min=0.01, help="How long the events topic keeps messages [default: broker's].")
    ] = None,
    dlq_retention_hours: Annotated[
        float | None, typer.Option(min=0.01, help="How long the DLQ keeps dead letters [default: broker's].")
    ] = None,
) -> None:
    """Create USAGEMETER_KAFKA_TOPIC, USAGEMETER_KAFKA_DLQ_TOPIC and USAGEMETER_ALERTS_TOPIC; a topic that exists
    is left as it is."""
    kafka = KafkaSettings()
    specs = [
        TopicSpec(kafka.topic, partitions, replication_factor, retention_hours),
        TopicSpec(kafka.dlq_topic, dlq_partitions, replication_factor, dlq_retention_hours),
        TopicSpec(AlertSettings().topic, 1, replication_factor, compacted=True),
    ]
    for line in describe(ensure_topics(kafka, specs)):
        typer.echo(f"{line} on {kafka.bootstrap_servers}")
