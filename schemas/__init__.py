"""The contracts: the usage event (Avro schemas, every version kept), its wire format and its rules.

Light on purpose: producers import this package, so it needs only fastavro and pydantic.
"""

from usagemeter.schemas.event import Operation, Status, UsageEvent
from usagemeter.schemas.registry import CURRENT, WriterSchema, by_fingerprint, by_version
from usagemeter.schemas.validation import Rejection, RejectReason, check_record

__all__ = [
    "CURRENT",
    "Operation",
    "RejectReason",
    "Rejection",
    "Status",
    "UsageEvent",
    "WriterSchema",
    "by_fingerprint",
    "by_version",
    "check_record",
]
