"""Every exception usagemeter raises, under one root, so a caller can catch them all or one behaviour.

In ``schemas`` because every part imports it, the producer included (it needs fastavro and pydantic only,
and this module needs nothing). Classes that were ``ValueError`` or ``RuntimeError`` before there was a
root stay so as well, for callers that catch those.

    UsageMeterError
    │   the worker's three behaviours, kept apart (a bug is none of them and stops the worker):
    ├── BlockRejected ··················· bad data: find the bad events, dead-letter them, go on
    ├── StoreUnavailable ················ the store is down or failing: back off, retry, commit nothing
    │     (back pressure is no exception: a write that takes long pauses consumption until it succeeds)
    ├── StopRequested ··················· a stop ended the insert retries: exit without committing
    ├── DeadLetterUnavailable ··········· the dead-letter topic cannot take messages: stop before committing
    ├── DeadLetterRatioExceeded ········· too many bad events in one batch: stop before dead-lettering them
    │   the store, at start:
    ├── StoreMissing ···················· a reading command found no store where it looked
    ├── StoreInUse ······················ another process or connection holds the embedded store
    ├── StoreUnreachable ················ no ClickHouse server answers at the DSN
    ├── MigrationEdited (RuntimeError) ·· an applied migration file was changed since
    │   pricing:
    ├── SnapshotRejected (ValueError) ··· a genai-prices snapshot the book cannot be built from
    ├── OverridesError (ValueError) ····· the overrides file cannot be used
    ├── Untranslatable (ValueError) ····· a model-name clause RE2 cannot express
    │   the aggregates:
    ├── RebuildRefused ·················· another rebuild holds the table's lock, or no instant without inserts came
    │   dead-letter tooling:
    ├── DeadLetterReadError ············· the dead-letter topic or the replay ledger cannot be read
    │   └── TopicMissing ················ the topic does not exist
    │   the HTTP client:
    ├── UsageApiError ··················· the query API did not return a result
    │   └── UsageApiUnreachableError ···· nothing answered at its address
    │   budgets:
    ├── BudgetExceeded ·················· a hard budget refuses the call (current cost, limit, period end, budget)
    ├── BudgetNotFound (LookupError) ···· no current budget with that id
    ├── BudgetCheckUnavailable ·········· the pre-flight check could not be answered and fails closed
    │   the producer (all ValueError):
    ├── ExtractionError ················· a provider response whose usage cannot be read
    ├── SessionError ···················· a session line the event contract cannot take
    ├── EventTooLargeError ·············· an encoded event over the producer's message.max.bytes
    │   the command line and the local broker:
    ├── ConfigError ····················· a setting or option that cannot work as given (exit code 2)
    ├── Unreachable ····················· a service the command needs does not answer
    ├── PortInUse ······················· the query API's address is taken
    ├── TopicsError ····················· a topic could not be listed or created
    └── LocalKafkaError (RuntimeError) ·· the local broker could not be fetched, started or used
        └── ToolMissingError ············ ``java`` or ``mvn`` is not on PATH

Third-party errors (confluent-kafka, clickhouse-connect, httpx) are wrapped where their meaning is known,
with ``raise ... from exc`` so the original stays in the traceback.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal


class UsageMeterError(Exception):
    """Root of usagemeter's own errors."""


class BlockRejected(UsageMeterError):
    """ClickHouse refused an inserted block because of its content (corrupt Avro, an invalid event)."""


class StoreUnavailable(UsageMeterError):
    """ClickHouse could not take an insert for reasons unrelated to the data."""


class StopRequested(UsageMeterError):
    """A stop was requested while a batch could not be written; it stays uncommitted, to be read again."""


class DeadLetterUnavailable(UsageMeterError):
    """Dead letters could not be acknowledged by Kafka, so the offsets they cover must not be committed."""


class DeadLetterRatioExceeded(UsageMeterError):
    """A batch's share of invalid messages passed the configured ratio: a bug or an unknown schema upstream,
    which a person must look at before the stream goes to the dead-letter topic (arroyo's ``DlqLimit``)."""


class StoreMissing(UsageMeterError):
    """No store (directory, database or tables) where a reading command looked."""


class StoreInUse(UsageMeterError):
    """The embedded directory is owned by another process, or its engine stayed open after a migration."""


class StoreUnreachable(UsageMeterError):
    """No ClickHouse server answers at the DSN."""


class MigrationEdited(UsageMeterError, RuntimeError):
    """An already-applied migration file no longer matches what was applied."""


class SnapshotRejected(UsageMeterError, ValueError):
    """The snapshot is not genai-prices data this book can be built from; nothing was written."""


class OverridesError(UsageMeterError, ValueError):
    """The overrides file cannot be used; the message names the entry and what to fix."""


class Untranslatable(UsageMeterError, ValueError):
    """A match clause RE2 cannot express."""


class DeadLetterReadError(UsageMeterError):
    """The dead-letter topic (or the replay ledger) could not be read: missing, unreachable, or a bad selection."""


class TopicMissing(DeadLetterReadError):
    """The topic does not exist (the replay ledger before the first replay, or a misspelt DLQ name)."""


class UsageApiError(UsageMeterError):
    """The query API did not return a report."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class UsageApiUnreachableError(UsageApiError):
    """Nothing answered at the API's address."""


class BudgetExceeded(UsageMeterError):
    """A hard budget's period spend (plus the call's estimate, when given) reaches its limit.

    ``current_cost`` and ``budget_limit`` are in the budget's unit (USD unless it counts tokens or requests).
    """

    def __init__(
        self, message: str, *, current_cost: Decimal, budget_limit: Decimal, period_end: datetime | None, budget_id: str
    ) -> None:
        super().__init__(message)
        self.current_cost = current_cost
        self.budget_limit = budget_limit
        self.period_end = period_end
        self.budget_id = budget_id

    @classmethod
    def of_budget(
        cls,
        name: str,
        *,
        spend: Decimal,
        estimate: Decimal,
        limit: Decimal,
        unit: str,
        period_end: datetime,
        budget_id: str,
    ) -> BudgetExceeded:
        """The refusal of budget ``name``, worded the same by the in-process check and the producer's."""
        return cls(
            f"budget {name} is exhausted: {spend + estimate} of {limit} {unit} until {period_end.isoformat()}",
            current_cost=spend,
            budget_limit=limit,
            period_end=period_end,
            budget_id=budget_id,
        )


class RebuildRefused(UsageMeterError):
    """A rebuild of the aggregates that cannot start (another one holds the lock) or find a quiet instant."""


class BudgetNotFound(UsageMeterError, LookupError):
    """No current budget has that id (never created, or deleted)."""


class BudgetCheckUnavailable(UsageMeterError):
    """The pre-flight check got no answer and is set to fail closed."""


class ExtractionError(UsageMeterError, ValueError):
    """The object is not a response whose usage we can read: unknown shape, no usage, or a bad count."""


class SessionError(UsageMeterError, ValueError):
    """A ``usage()`` line or a session the event contract cannot take."""


class EventTooLargeError(UsageMeterError, ValueError):
    """An encoded event over the producer's ``message.max.bytes``: no broker would take it."""


class ConfigError(UsageMeterError):
    """A setting or option that cannot work as given (exit code 2)."""


class Unreachable(UsageMeterError):
    """A service the command needs does not answer (the message names it and its setting)."""


class PortInUse(UsageMeterError):
    """The query API's address is taken."""


class TopicsError(UsageMeterError):
    """A topic could not be listed or created (the message names the topic and the broker)."""


class LocalKafkaError(UsageMeterError, RuntimeError):
    """The local broker could not be fetched, started, stopped or used."""


class ToolMissingError(LocalKafkaError):
    """``java`` or ``mvn`` is not on PATH."""
