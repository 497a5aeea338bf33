"""The worker's exceptions. Three behaviours, one root:

    UsageMeterError
    ├── BlockRejected       the engine refused the data: find the bad messages, dead-letter them, go on
    ├── StoreUnavailable    ClickHouse is down or failing: pause, back off, retry; commit nothing
    └── DeadLetterUnavailable  the dead-letter topic cannot take messages: stop before committing

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
