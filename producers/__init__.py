"""The emitter SDK services import: build, encode and send usage events without ever blocking.

Imports nothing of the worker: the base install (confluent-kafka, fastavro, pydantic) is enough.
"""

from usagemeter.producers.backlog import DeliveryCallback
from usagemeter.producers.emitter import UsageEmitter
from usagemeter.producers.fields import EventFields
from usagemeter.producers.spool import Spool
from usagemeter.producers.stats import EmitterStats

__all__ = ["DeliveryCallback", "EmitterStats", "EventFields", "Spool", "UsageEmitter"]
