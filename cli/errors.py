"""Operational errors as one line that names what to fix, and an exit code: 2 bad configuration, 1 failure.

The one place known exceptions become messages, around the whole command (``usagemeter.cli.app.main``);
a traceback only with ``--debug`` or USAGEMETER_DEBUG=1. Nothing is printed after a command has
finished: librdkafka's and clickhouse-connect's loggers are silenced at exit.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError
from confluent_kafka import KafkaError, KafkaException
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from usagemeter.api import settings as api_settings
from usagemeter.budgets import settings as budget_settings
from usagemeter.consumers import settings as worker_settings
from usagemeter.consumers.settings import KAFKA_LOG
from usagemeter.query import credentials
from usagemeter.schemas.errors import ConfigError, StoreMissing, UsageMeterError

CONFIG, FAILURE = 2, 1
_QUIET = ("clickhouse_connect", "urllib3", "uvicorn.error")
_SETTINGS_MODULES = (worker_settings, api_settings, budget_settings, credentials)


def debug_requested() -> bool:
    return os.environ.get("USAGEMETER_DEBUG", "").lower() in {"1", "true", "yes"}


def quiet_libraries() -> None:
    """Library loggers that would repeat, as tracebacks or retries, what our one line says."""
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def silence_at_exit() -> None:
    """Clients that outlive the command (daemon threads, garbage not yet collected) stay silent."""
    KAFKA_LOG.disabled = True
    for name in _QUIET:
        logging.getLogger(name).disabled = True


def describe(exc: BaseException) -> tuple[str, int]:
    """``(message, exit code)`` for an exception that ended a command."""
    if isinstance(exc, ValidationError):
        return _settings_message(exc), CONFIG
    if isinstance(exc, ConfigError | StoreMissing):
        return str(exc), CONFIG
    if isinstance(exc, UsageMeterError):
        return str(exc), FAILURE
    if isinstance(exc, KafkaException):
        error = exc.args[0] if exc.args else None
        text = error.str() if isinstance(error, KafkaError) else str(exc)
        return f"Kafka: {text} (USAGEMETER_KAFKA_BOOTSTRAP_SERVERS and _TOPIC/_DLQ_TOPIC)", FAILURE
    if isinstance(exc, ClickHouseError):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"ClickHouse: {first[:300]} (USAGEMETER_CLICKHOUSE_DSN)", FAILURE
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}", FAILURE
    return f"{type(exc).__name__}: {exc} (--debug shows the traceback)", FAILURE


def _settings_message(exc: ValidationError) -> str:
    """pydantic names the field; people set the environment variable, so name that, with its value (a
    secret's value hidden)."""
    cls = _settings_class(exc.title)
    prefix = str(cls.model_config.get("env_prefix", "")) if cls is not None else None
    parts = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        if not field:  # a check across fields: its message names the variables
            parts.append(error["msg"].removeprefix("Value error, "))
            continue
        name = f"{prefix}{field.upper()}" if prefix is not None else field
        given: Any = error.get("input")
        value = "" if isinstance(given, dict) or given is None else f"={given}"
        if cls is not None and "SecretStr" in str(getattr(cls.model_fields.get(field), "annotation", "")):
            value = "=***"
        parts.append(f"{name}{value}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _settings_class(title: str) -> type[BaseSettings] | None:
    for module in _SETTINGS_MODULES:
        cls = getattr(module, title, None)
        if isinstance(cls, type) and issubclass(cls, BaseSettings):
            return cls
    return None
