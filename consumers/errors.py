"""The worker's exceptions. Three behaviours, one root:

    UsageMeterError
    ├── BlockRejected       the engine refused the data: find the bad messages, dead-letter them, go on
    ├── StoreUnavailable    ClickHouse is down or failing: pause, back off, retry; commit nothing
    ├── DeadLetterUnavailable  the dead-letter topic cannot take messages: stop before committing
    ├── DeadLetterRatioExceeded  too many bad messages in one batch: stop before dead-lettering the stream
    ├── StopRequested       a stop signal ended the insert retries: exit without committing
    └── StoreInUse          the embedded store is held by another process or connection: stop at start

Programming errors are none of these and stop the worker: for billing, a bug that quietly dead-letters
events loses revenue.
"""


class UsageMeterError(Exception):
    """Root of usagemeter's own errors."""


class BlockRejected(UsageMeterError):
    """ClickHouse refused an inserted block because of its content (corrupt Avro, an invalid event)."""


class StoreUnavailable(UsageMeterError):
    """ClickHouse could not take an insert for reasons unrelated to the data."""


class DeadLetterUnavailable(UsageMeterError):
    """Dead letters could not be acknowledged by Kafka, so the offsets they cover must not be committed."""


class DeadLetterRatioExceeded(UsageMeterError):
    """A batch's share of invalid messages passed the configured ratio: a bug or an unknown schema upstream,
    which a person must look at before the stream goes to the dead-letter topic (arroyo's ``DlqLimit``)."""


class StopRequested(UsageMeterError):
    """A stop was requested while a batch could not be written; it stays uncommitted, to be read again."""


class StoreInUse(UsageMeterError):
    """The embedded store is held elsewhere, or could not be reopened after a migration."""
