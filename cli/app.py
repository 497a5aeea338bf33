"""The ``usagemeter`` entry point: signals first, then the commands (whose imports take about a second),
and every error that ends a command as one line (``usagemeter.cli.errors``)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from usagemeter.cli import signals

if TYPE_CHECKING:
    from usagemeter.cli.commands import app


def main() -> None:
    signals.catch_early()  # a SIGTERM while the imports below run is a stop request, not a kill
    _export_env_file()
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


def _export_env_file() -> None:
    """The optional ``.env`` (or ``$USAGEMETER_ENV_FILE``) into this process's environment, without overriding
    it: the settings classes read the file themselves, and this makes typer's environment options
    (``USAGEMETER_API_PORT``, ``USAGEMETER_API_URL``, ``USAGEMETER_DEBUG``) read it as well."""
    from dotenv import load_dotenv  # noqa: PLC0415

    load_dotenv(os.environ.get("USAGEMETER_ENV_FILE") or ".env", override=False)


def __getattr__(name: str) -> Any:
    """``from usagemeter.cli.app import app`` (tests) without installing signal handlers in the importer."""
    if name == "app":
        from usagemeter.cli.commands import app  # noqa: PLC0415

        return app
    raise AttributeError(name)


__all__ = ["app", "main"]
