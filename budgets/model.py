"""What a budget is: a scope, a period in a time zone, a limit, thresholds, a mode and channels.

A budget is a definition, never a counter: its spend in a period is a sum over the 15-minute aggregates
inside that period's bounds (``budgets.spend``), so nothing is reset and past periods stay queryable.
Every change is a new version (``budgets.store``); ``Budget`` is one stored version.

Refusals name the field: a percentage above 100, an absolute threshold above the limit, a zone that does
not exist, a limit that is not positive, a webhook URL that is not http(s).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from usagemeter.query.models import Money, decimal_text
from usagemeter.query.periods import zone

PeriodKind = Literal["day", "week", "month", "rolling"]
Unit = Literal["usd", "tokens", "requests"]
Mode = Literal["soft", "hard"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: Final[tuple[Weekday, ...]] = (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
)  # fmt: skip
ScopeKind = Literal["client", "user", "model", "label"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Scope(_Frozen):
    """Whose usage counts: a client, or one of its users, providers/models or label values (one at most)."""

    client_id: str = Field(min_length=1, max_length=256)
    user_id: str | None = Field(default=None, min_length=1, max_length=256)
    provider: str | None = Field(default=None, min_length=1, max_length=256)
    model: str | None = Field(default=None, min_length=1, max_length=256)
    label_key: str | None = Field(default=None, min_length=1, max_length=128)
    label_value: str | None = Field(default=None, max_length=1024)

    @model_validator(mode="after")
    def _one_narrowing(self) -> Scope:
        if (self.label_key is None) != (self.label_value is None):
            raise ValueError("label_key and label_value go together")
        narrowed = [self.user_id is not None, self.provider is not None or self.model is not None]
        narrowed.append(self.label_key is not None)
        if sum(narrowed) > 1:
            raise ValueError("a scope narrows a client by one of: user, provider/model, label (not several)")
        return self

    @property
    def kind(self) -> ScopeKind:
        if self.user_id is not None:
            return "user"
        if self.provider is not None or self.model is not None:
            return "model"
        return "label" if self.label_key is not None else "client"

    def describe(self) -> str:
        parts = [f"client {self.client_id}"]
        if self.user_id is not None:
            parts.append(f"user {self.user_id}")
        if self.provider is not None:
            parts.append(f"provider {self.provider}")
        if self.model is not None:
            parts.append(f"model {self.model}")
        if self.label_key is not None:
            parts.append(f"label {self.label_key}={self.label_value}")
        return ", ".join(parts)


class Threshold(_Frozen):
    """A percentage of the limit or an absolute amount in the budget's unit: exactly one of them."""

    percent: Decimal | None = Field(default=None, gt=0, le=100, description="of the limit, 0 < percent <= 100")
    amount: Decimal | None = Field(default=None, gt=0, description="in the budget's unit")

    @model_validator(mode="after")
    def _exactly_one(self) -> Threshold:
        if (self.percent is None) == (self.amount is None):
            raise ValueError("a threshold has either a percent or an amount")
        return self

    @property
    def key(self) -> str:
        """Names the threshold in the alert ledger: ``pct:80`` or ``abs:25``."""
        if self.percent is not None:
            return f"pct:{decimal_text(self.percent)}"
        return f"abs:{decimal_text(self.amount or Decimal(0))}"

    def level(self, limit: Decimal) -> Decimal:
        """The spend at which this threshold is crossed."""
        return limit * self.percent / 100 if self.percent is not None else self.amount or Decimal(0)

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """``80%`` or ``80`` (an amount): the CLI's form."""
        stripped = text.strip()
        try:
            if stripped.endswith("%"):
                return cls(percent=Decimal(stripped[:-1]))
            return cls(amount=Decimal(stripped))
        except ArithmeticError as exc:
            raise ValueError(f"threshold {text!r} is neither a percentage like 80% nor an amount like 25") from exc


DEFAULT_THRESHOLDS: Final = (
    Threshold(percent=Decimal(50)),
    Threshold(percent=Decimal(80)),
    Threshold(percent=Decimal(100)),
)


class LogChannel(_Frozen):
    type: Literal["log"] = "log"


class KafkaChannel(_Frozen):
    """The alerts topic (USAGEMETER_ALERTS_TOPIC), Avro, keyed by alert id."""

    type: Literal["kafka"] = "kafka"


class WebhookChannel(_Frozen):
    """A POST of the alert as JSON, signed (HMAC-SHA256); ``format="slack"`` posts a Slack-compatible body."""

    type: Literal["webhook"] = "webhook"
    url: str = Field(max_length=2048)
    format: Literal["json", "slack"] = "json"

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return url

    def redacted(self) -> str:
        """Scheme and host only: incoming-webhook URLs carry their secret in the path."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}"


Channel = Annotated[LogChannel | KafkaChannel | WebhookChannel, Field(discriminator="type")]
DEFAULT_CHANNELS: Final[tuple[Channel, ...]] = (LogChannel(), KafkaChannel())


class BudgetSpec(_Frozen):
    """A budget as its owner writes it; the API and ``usagemeter budgets create`` take this."""

    name: str = Field(default="", max_length=256)
    scope: Scope
    period: PeriodKind = "month"
    tz: str = Field(default="UTC", description="IANA zone the period is aligned in")
    week_start: Weekday = Field(default="monday", description="first day of a week period")
    rolling_days: int | None = Field(default=None, ge=1, le=366, description="length of a rolling period")
    unit: Unit = "usd"
    limit: Money = Field(gt=0)
    thresholds: tuple[Threshold, ...] = DEFAULT_THRESHOLDS
    mode: Mode = Field(default="soft", description="soft: alerts only; hard: check_budget refuses past the limit")
    channels: tuple[Channel, ...] = DEFAULT_CHANNELS

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, tz: str) -> str:
        zone(tz)
        return tz

    @model_validator(mode="after")
    def _consistent(self) -> BudgetSpec:
        if (self.period == "rolling") != (self.rolling_days is not None):
            raise ValueError("rolling_days is required for a rolling period and only for one")
        if not self.thresholds:
            raise ValueError("thresholds: give at least one")
        for index, threshold in enumerate(self.thresholds):
            if threshold.amount is not None and threshold.amount > self.limit:
                raise ValueError(f"thresholds[{index}]: {threshold.amount} is above the limit {self.limit}")
        if len({t.key for t in self.thresholds}) != len(self.thresholds):
            raise ValueError("thresholds: each may appear once")
        return self

    @property
    def spec_key(self) -> str:
        """What the period's bounds depend on: budgets sharing it share their bounds."""
        return f"{self.period}|{self.tz}|{self.week_start}|{self.rolling_days or 0}"

    def ordered_thresholds(self) -> list[Threshold]:
        return sorted(self.thresholds, key=lambda t: t.level(self.limit))


class Budget(_Frozen):
    """One stored version of a budget."""

    budget_id: str
    version: int
    changed_at: AwareDatetime
    deleted: bool = False
    spec: BudgetSpec

    def without_secrets(self) -> Budget:
        """This version with each webhook URL cut to its scheme and host (``WebhookChannel.redacted``): what a
        reader who is not an admin sees, as an incoming-webhook URL carries its secret in the path."""
        channels = tuple(
            c.model_copy(update={"url": c.redacted()}) if isinstance(c, WebhookChannel) else c
            for c in self.spec.channels
        )
        return self.model_copy(update={"spec": self.spec.model_copy(update={"channels": channels})})


class BudgetPatch(_Frozen):
    """A change: the fields given replace the current version's; the rest stay."""

    name: str | None = None
    limit: Money | None = None
    thresholds: tuple[Threshold, ...] | None = None
    mode: Mode | None = None
    channels: tuple[Channel, ...] | None = None
    tz: str | None = None
    period: PeriodKind | None = None
    week_start: Weekday | None = None
    rolling_days: int | None = None

    def apply(self, spec: BudgetSpec) -> BudgetSpec:
        changes = self.model_dump(exclude_none=True)
        return BudgetSpec.model_validate({**spec.model_dump(), **changes})


__all__ = [
    "Budget",
    "BudgetPatch",
    "BudgetSpec",
    "Channel",
    "KafkaChannel",
    "LogChannel",
    "Scope",
    "Threshold",
    "WebhookChannel",
]
