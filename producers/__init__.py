"""The emitter SDK services import: build, encode and send usage events without ever blocking.

Imports nothing of the worker: the base install (confluent-kafka, fastavro, pydantic) is enough. Nor any
provider SDK: ``extract_usage`` reads OpenAI, Anthropic, Gemini and LiteLLM responses by field name.
"""

from usagemeter.producers.backlog import DeliveryCallback
from usagemeter.producers.budget_check import BudgetCheck
from usagemeter.producers.emitter import UsageEmitter
from usagemeter.producers.extraction import Extracted, extract_usage
from usagemeter.producers.fields import EventFields
from usagemeter.producers.memory import DeadLetter, InMemoryEmitter
from usagemeter.producers.session import UsageSession
from usagemeter.producers.spool import Spool
from usagemeter.producers.stats import EmitterStats
from usagemeter.schemas.errors import (
    BudgetCheckUnavailable,
    BudgetExceeded,
    EventTooLargeError,
    ExtractionError,
    SessionError,
)

__all__ = [
    "BudgetCheck",
    "BudgetCheckUnavailable",
    "BudgetExceeded",
    "DeadLetter",
    "DeliveryCallback",
    "EmitterStats",
    "EventFields",
    "EventTooLargeError",
    "Extracted",
    "ExtractionError",
    "InMemoryEmitter",
    "SessionError",
    "Spool",
    "UsageEmitter",
    "UsageSession",
    "extract_usage",
]
