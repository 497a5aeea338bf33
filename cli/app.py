"""The ``usagemeter`` entry point: signals first, then the commands (whose imports take about a second),
and every error that ends a command as one line (``usagemeter.cli.errors``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from usagemeter.cli import signals

if TYPE_CHECKING:
    from usagemeter.cli.commands import app


def main() -> None:
    signals.catch_early()  # a SIGTERM while the imports below run is a stop request, not a kill
    from usagemeter.cli import errors  # noqa: PLC0415 -- after the signal handlers, on purpose
    from usagemeter.cli.commands import app, debug_mode  # noqa: PLC0415

    errors.quiet_libraries()
    try:
        app(standalone_mode=True)
    except Exception as exc:
        if debug_mode():
            raise
        message, code = errors.describe(exc)
        errors.silence_at_exit()
        print(f"error: {message}", file=sys.stderr)
        sys.exit(code)
    finally:
        errors.silence_at_exit()


def __getattr__(name: str) -> Any:
    """``from usagemeter.cli.app import app`` (tests) without installing signal handlers in the importer."""
    if name == "app":
        from usagemeter.cli.commands import app  # noqa: PLC0415

        return app
    raise AttributeError(name)


__all__ = ["app", "main"]
