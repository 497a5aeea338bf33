"""The ``usagemeter`` entry point: signals first, then the commands (whose imports take about a second)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from usagemeter import signals

if TYPE_CHECKING:
    from usagemeter.commands import app


def main() -> None:
    signals.catch_early()  # a SIGTERM while the imports below run is a stop request, not a kill
    from usagemeter.commands import app  # noqa: PLC0415 -- after the signal handlers, on purpose

    app()


def __getattr__(name: str) -> Any:
    """``from usagemeter.app import app`` (tests) without installing signal handlers in the importer."""
    if name == "app":
        from usagemeter.commands import app  # noqa: PLC0415

        return app
    raise AttributeError(name)


__all__ = ["app", "main"]
