"""Typed settings, one class per external system, read from ``USAGEMETER_*`` environment variables.

Invalid values fail at start with pydantic's message naming the variable; secrets are ``SecretStr`` so
they never show up when settings are printed or logged.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

from usagemeter.schemas.settings_files import settings_config

DEFAULT_HOME = Path(".var/usagemeter")


class _OneLinePer(logging.Filter):
    """librdkafka retries an unreachable broker several times a second: pass one line per interval and
    say how many were held back, so a broker that is down is one line every few seconds, not a flood."""

    def __init__(self, interval_s: float) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._last = -interval_s
        self._held = 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self._last < self._interval_s:
            self._held += 1
            return False
        if self._held:
            record.msg, record.args = f"{record.getMessage()} (+{self._held} lines held back)", None
        self._last, self._held = now, 0
        return True


KAFKA_LOG = logging.getLogger("usagemeter.kafka")
"""librdkafka's own log, for every client made from ``client_config()`` (rate-limited; silence it by level)."""
KAFKA_LOG.addFilter(_OneLinePer(10.0))


class ClickHouseSettings(BaseSettings):
    model_config = settings_config("USAGEMETER_CLICKHOUSE_")

    dsn: str = Field(
        default=f"chdb:///{DEFAULT_HOME.resolve()}/chdb",
        description="chdb:///<dir> for the embedded engine, or http(s)://host:8123 for a server.",
    )
    database: str = Field(
        default="usagemeter", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="The database every table is in."
    )
    username: str = Field(default="default", description="Server user (ignored by the embedded engine).")
    password: SecretStr = Field(default=SecretStr(""), description="Server password (ignored by the embedded engine).")

    cluster: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="A ClickHouse server cluster (remote_servers) to migrate with ON CLUSTER: replicated local tables, "
        "Distributed tables under the usual names (consumers/cluster.py, docs/deploy-cluster.md).",
    )

    @model_validator(mode="after")
    def _cluster_needs_a_server(self) -> ClickHouseSettings:
        if self.cluster and self.embedded:
            raise ValueError("USAGEMETER_CLICKHOUSE_CLUSTER needs a server DSN (http:// or https://), not chdb://")
        return self

    @field_validator("dsn")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("chdb://", "http://", "https://")):
            raise ValueError("USAGEMETER_CLICKHOUSE_DSN must start with chdb://, http:// or https://")
        return value

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb://")


class KafkaSettings(BaseSettings):
    model_config = settings_config("USAGEMETER_KAFKA_")

    bootstrap_servers: str = Field(default="127.0.0.1:9092", description="Brokers, comma-separated host:port.")
    topic: str = Field(default="usage.events", description="The usage events topic.")
    dlq_topic: str = Field(default="usage.events.dlq", description="Dead letters: refused messages, with the reason.")
    group_id: str = Field(default="usagemeter-worker", description="The consumer group every worker joins.")
    group_instance_id: str | None = Field(
        default=None,
        description="Static group membership (e.g. the pod name): a restarted worker takes its partitions back at "
        "once instead of after a rebalance and the session timeout.",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="librdkafka's security.protocol: TLS with SSL/SASL_SSL, SASL with SASL_*."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"] | None = Field(
        default=None, description="Required with SASL_*; OAUTHBEARER and GSSAPI take their options from extra_config."
    )
    sasl_username: str | None = Field(default=None, description="SASL user (PLAIN, SCRAM).")
    sasl_password: SecretStr | None = Field(default=None, description="SASL password (PLAIN, SCRAM).")
    ssl_ca_location: Path | None = Field(
        default=None, description="CA bundle (PEM) that signed the brokers' certificates; default: the system's."
    )
    ssl_certificate_location: Path | None = Field(default=None, description="Client certificate (PEM), for mTLS.")
    ssl_key_location: Path | None = Field(default=None, description="Client private key (PEM), for mTLS.")
    ssl_key_password: SecretStr | None = Field(default=None, description="Passphrase of the client key.")
    ssl_endpoint_identification_algorithm: Literal["https", "none"] = Field(
        default="https", description="'none' turns off the broker host-name check (not recommended)."
    )
    extra_config: dict[str, str] = Field(
        default_factory=dict,
        description="Any other librdkafka property for every client, as a JSON object "
        '(\'{"sasl.oauthbearer.method": "oidc"}\'); the settings above win over it.',
    )
    create_topics: bool = Field(
        default=True,
        description="worker/serve create the topic and its DLQ when missing; false when the operator manages them.",
    )

    def client_config(self) -> dict[str, Any]:
        """librdkafka settings shared by every client usagemeter makes, its log routed through ``KAFKA_LOG``."""
        config: dict[str, Any] = {
            **self.extra_config,
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "logger": KAFKA_LOG,
        }
        optional = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password.get_secret_value() if self.sasl_password else None,
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
            "ssl.key.password": self.ssl_key_password.get_secret_value() if self.ssl_key_password else None,
        }
        config.update({name: str(value) for name, value in optional.items() if value is not None})
        if self.security_protocol in ("SSL", "SASL_SSL"):
            config["ssl.endpoint.identification.algorithm"] = self.ssl_endpoint_identification_algorithm
        return config

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        """A SASL protocol without its mechanism or credentials fails at start, not at the first connection."""
        if not self.security_protocol.startswith("SASL_"):
            return self
        if self.sasl_mechanism is None:
            raise ValueError(f"USAGEMETER_KAFKA_SASL_MECHANISM is required with {self.security_protocol}")
        if self.sasl_mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512") and not (
            self.sasl_username and self.sasl_password
        ):
            raise ValueError(f"{self.sasl_mechanism} needs USAGEMETER_KAFKA_SASL_USERNAME and _SASL_PASSWORD")
        return self


class WorkerSettings(BaseSettings):
    model_config = settings_config("USAGEMETER_WORKER_")

    max_batch_rows: int = Field(default=100_000, ge=1, le=1_000_000, description="Flush a batch at this many messages.")
    max_batch_wait_s: float = Field(default=1.0, gt=0, le=60, description="Flush a non-empty batch this old.")
    start_timeout_s: float = Field(
        default=10.0, gt=0, le=600, description="How long start-up waits for Kafka and ClickHouse to answer."
    )
    insert_retry_max_s: float = Field(default=30.0, gt=0, description="Longest back-off between insert retries.")
    insert_sessions: int = Field(
        default=2,
        ge=1,
        le=16,
        description="ClickHouse sessions a batch's partition slices are inserted on side by side. Every insert "
        "pays a fixed cost (the view chain analysed, on one core) whatever its size; about the store's cores.",
    )
    dedup_window_s: float = Field(
        default=86_400,
        ge=60,
        le=7 * 86_400,
        description="How long an inserted event_id is remembered: a re-send within it is dropped. Memory: "
        "about 1.5 bytes an id in a filter, its suspects checked in ingested_ids (a day at 1,000 events/s is "
        "130 MB); ClickHouse keeps ids 8 days, hence the limit.",
    )
    max_dead_letter_ratio: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Stop, committing nothing, when a batch of at least dead_letter_ratio_min_rows messages "
        "has a larger share of bad ones: a bug or a new schema that dead-letters the stream is lost revenue.",
    )
    dead_letter_ratio_min_rows: int = Field(
        default=100, ge=1, description="Smallest batch the dead-letter ratio is judged on."
    )
    dead_letter_max_bytes: int = Field(
        default=1_000_000,
        ge=10_000,
        le=100_000_000,
        description="Largest dead letter produced (the DLQ producer's message.max.bytes; keep it at most the "
        "DLQ topic's max.message.bytes): a larger one keeps its headers, size and SHA-256 and a prefix of the value.",
    )


class OverridesSettings(BaseSettings):
    model_config = settings_config("USAGEMETER_OVERRIDES_")

    path: Path | None = Field(default=None, description="The overrides file (TOML, see pricing/overrides.py).")
    check_interval_s: float = Field(default=10.0, gt=0, le=3600, description="How often the worker looks for changes.")


class PriceRefreshSettings(BaseSettings):
    """Periodic price snapshot refresh (daily by default); off unless a URL is set."""

    model_config = settings_config("USAGEMETER_PRICES_")

    refresh_url: str | None = Field(
        default=None, description="genai-prices data.json to load periodically; unset: never fetch at run time."
    )
    refresh_interval_s: float = Field(default=86_400.0, ge=60, description="Seconds between refreshes.")


class MetricsSettings(BaseSettings):
    """The Prometheus endpoint of ``worker`` and ``alerter`` (``serve`` also answers ``GET /metrics`` on its API)."""

    model_config = settings_config("USAGEMETER_METRICS_")

    port: int | None = Field(
        default=None, ge=1, le=65_535, description="Serve /metrics on this port; unset: no metrics listener."
    )
    host: str = Field(
        default="127.0.0.1", description="Address the metrics listener binds to (0.0.0.0 in a container)."
    )
