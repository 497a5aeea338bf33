"""Settings of the alerter (``USAGEMETER_ALERTS_*``) and of the pre-flight check (``USAGEMETER_BUDGETS_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from usagemeter.schemas.settings_files import settings_config


class AlertSettings(BaseSettings):
    model_config = settings_config("USAGEMETER_ALERTS_")

    enabled: bool = Field(default=True, description="worker/serve evaluate budgets and deliver alerts.")
    topic: str = Field(default="usage.alerts", min_length=1, description="Kafka topic of the kafka channel.")
    webhook_secret: SecretStr | None = Field(
        default=None, description="Signs every webhook body (HMAC-SHA256); webhooks are refused without it."
    )
    max_attempts: int = Field(default=8, ge=1, le=100, description="Webhook attempts before the alert is dead.")
    backoff_initial_s: float = Field(
        default=1.0, gt=0, le=3600, description="First wait before a failed delivery is tried again (doubling)."
    )
    backoff_max_s: float = Field(default=300.0, gt=0, le=86400, description="Longest wait between delivery attempts.")
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120, description="How long a webhook may take to answer.")
    sweep_interval_s: float = Field(
        default=30.0, gt=0, le=3600, description="Every budget is evaluated this often, beside each flush's."
    )


class BudgetCheckSettings(BaseSettings):
    model_config = settings_config("USAGEMETER_BUDGETS_")

    check_cache_ttl_s: float = Field(default=1.0, ge=0, le=60, description="How long a check's spend is reused.")
    ingest_lag_s: float = Field(
        default=2.0,
        ge=0,
        le=3600,
        description="Bound on event → aggregates (the worker's max batch wait plus an insert); with the cache "
        "TTL it is the freshness behind the worst-case overshoot.",
    )
