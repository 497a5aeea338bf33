"""Sends one alert to one channel: the log, the alerts topic, or a webhook (JSON or a Slack-compatible body).

``send`` returns when the channel has the alert and raises ``DeliveryFailed`` with the reason otherwise;
retries and back-off are the dispatcher's. Every channel carries the alert id: the topic as the message
key (a compacted topic keeps one), a webhook as ``Idempotency-Key`` beside its signature
(``budgets.signature``), the log line in its text.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import httpx
from confluent_kafka import KafkaError, Message, Producer

from usagemeter.budgets.alerts import Alert
from usagemeter.budgets.model import Channel, KafkaChannel, LogChannel, WebhookChannel
from usagemeter.budgets.settings import AlertSettings
from usagemeter.budgets.signature import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from usagemeter.consumers.settings import KafkaSettings
from usagemeter.schemas.clock import SYSTEM_CLOCK, Clock
from usagemeter.schemas.errors import UsageMeterError
from usagemeter.schemas.registry import alert_schema
from usagemeter.schemas.wire import encode

log = logging.getLogger("usagemeter.alerts")


class DeliveryFailed(UsageMeterError):
    """The channel did not take the alert; the message says why (never a secret)."""


def channel_name(index: int, channel: Channel) -> str:
    """How deliveries name a channel: its place in the budget's list and its type (no URL: it can be a secret)."""
    return f"{index}:{channel.type}"


class Senders:
    """One sender per channel type; the Kafka producer is made at the first alert for the topic."""

    def __init__(self, settings: AlertSettings, kafka: KafkaSettings, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._settings = settings
        self._kafka = kafka
        self._clock = clock
        self._producer: Producer | None = None
        self._http = httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False)

    def send(self, channel: Channel, alert: Alert) -> None:
        if isinstance(channel, LogChannel):
            log.warning("budget alert %s: %s", alert.alert_id, alert.summary())
        elif isinstance(channel, KafkaChannel):
            self._to_topic(alert)
        else:
            self._to_webhook(channel, alert)

    def close(self) -> None:
        self._http.close()
        if self._producer is not None:
            self._producer.flush(5.0)

    def _to_topic(self, alert: Alert) -> None:
        if self._producer is None:
            self._producer = Producer({**self._kafka.client_config(), "enable.idempotence": True, "linger.ms": 0})
        outcome: list[KafkaError | None] = []

        def delivered(error: KafkaError | None, _message: Message) -> None:
            outcome.append(error)

        value = encode(alert_schema(), avro_record(alert))
        self._producer.produce(self._settings.topic, value=value, key=alert.alert_id.encode(), on_delivery=delivered)
        self._producer.flush(self._settings.webhook_timeout_s)
        if not outcome:
            raise DeliveryFailed(f"topic {self._settings.topic}: no acknowledgement within the timeout")
        if outcome[0] is not None:
            raise DeliveryFailed(f"topic {self._settings.topic}: {outcome[0].str()}")

    def _to_webhook(self, channel: WebhookChannel, alert: Alert) -> None:
        secret = self._settings.webhook_secret
        if secret is None:
            raise DeliveryFailed("USAGEMETER_ALERTS_WEBHOOK_SECRET is not set: webhooks are sent signed or not at all")
        body = (slack_body(alert) if channel.format == "slack" else alert.model_dump_json()).encode()
        timestamp = self._clock.now_us() // 1_000_000
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret.get_secret_value(), timestamp, body),
            IDEMPOTENCY_HEADER: alert.alert_id,
        }
        try:
            response = self._http.post(channel.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"webhook {channel.redacted()}: {type(exc).__name__}") from exc
        if not response.is_success:
            raise DeliveryFailed(f"webhook {channel.redacted()} answered {response.status_code}")


def slack_body(alert: Alert) -> str:
    """An incoming-webhook message: Slack's ``text`` field, which Mattermost and others accept as well."""
    return json.dumps({"text": f":rotating_light: {alert.summary()} (alert {alert.alert_id})"})


def avro_record(alert: Alert) -> dict[str, Any]:
    """The alert as the topic's Avro record (``schemas/avro/budget_alert.v1.avsc``)."""
    data = json.loads(alert.model_dump_json())
    scope = data.pop("scope")
    return {
        **data,
        **{key: scope.get(key) for key in ("client_id", "user_id", "provider", "model", "label_key", "label_value")},
        **{key: _micros(getattr(alert, key)) for key in ("period_start", "period_end", "as_of", "created_at")},
        "next_reset": _micros(alert.next_reset),
        "projected_at": _micros(alert.projected_at),
        "thresholds": list(alert.thresholds),
        "crossings": list(alert.crossings),
    }


def _micros(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond
