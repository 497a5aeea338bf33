"""usagemeter: usage metering for LLM and other metered API calls.

The small public API, importable from here::

    from usagemeter import UsageEmitter, UsageEvent     # a service emitting events (usagemeter.producers)
    from usagemeter import InMemoryEmitter              # the same interface for your tests: records, never sends
    from usagemeter import get_usage, fetch_usage       # spend reports (usagemeter.query)
    from usagemeter import BudgetCheck, BudgetExceeded  # the pre-flight budget check (usagemeter.producers)
    from usagemeter import UsageMeterError              # the root of every error usagemeter raises

Each name is imported on first use, so ``import usagemeter`` costs nothing and a producer that imports
``UsageEmitter`` never loads the query side (httpx, clickhouse-connect). The parts themselves are the
subpackages (``producers``, ``schemas``, ``consumers``, ``pricing``, ``query``, ``api``, ``cli``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from usagemeter.producers import BudgetCheck, InMemoryEmitter, UsageEmitter
    from usagemeter.query import UsageReport, fetch_usage, get_usage
    from usagemeter.schemas import UsageEvent
    from usagemeter.schemas.errors import BudgetExceeded, UsageMeterError

__version__ = "0.1.0"

_HOME: Final = {
    "BudgetCheck": "usagemeter.producers",
    "BudgetExceeded": "usagemeter.schemas.errors",
    "InMemoryEmitter": "usagemeter.producers",
    "UsageEmitter": "usagemeter.producers",
    "UsageEvent": "usagemeter.schemas",
    "UsageMeterError": "usagemeter.schemas.errors",
    "UsageReport": "usagemeter.query",
    "fetch_usage": "usagemeter.query",
    "get_usage": "usagemeter.query",
}


if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any name imported from here

    def __getattr__(name: str) -> Any:
        """PEP 562: the public names, each from its own subpackage when first asked for."""
        if name not in _HOME:
            raise AttributeError(f"module 'usagemeter' has no attribute {name!r}")
        return getattr(importlib.import_module(_HOME[name]), name)


__all__ = [
    "BudgetCheck",
    "BudgetExceeded",
    "InMemoryEmitter",
    "UsageEmitter",
    "UsageEvent",
    "UsageMeterError",
    "UsageReport",
    "__version__",
    "fetch_usage",
    "get_usage",
]
