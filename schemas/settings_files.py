"""Where every ``USAGEMETER_*`` settings class reads its values: the environment first, then an optional ``.env``.

One helper so that every part reads the same file the same way: ``$USAGEMETER_ENV_FILE`` when set, else ``.env``
in the working directory; a missing file is no error. Variables already in the environment win over the file
(pydantic-settings' order), so a container's environment overrides a baked-in file. Unknown ``USAGEMETER_*``
names in the file are ignored, as unknown environment variables are: several classes share a prefix
(``USAGEMETER_API_`` is the API's and its clients'), so each takes its own and leaves the others'.

The CLI also exports the file into its own environment at start (``cli/app.py``), so options read from the
environment by typer (``USAGEMETER_API_PORT``, ``USAGEMETER_DEBUG``) see it too. Imported by the worker side
only: pydantic-settings is not a dependency of the producer.
"""

from __future__ import annotations

import os

from pydantic_settings import SettingsConfigDict


def env_file() -> str:
    """The optional settings file: ``$USAGEMETER_ENV_FILE``, else ``.env`` (relative to the working directory)."""
    return os.environ.get("USAGEMETER_ENV_FILE") or ".env"


def settings_config(env_prefix: str) -> SettingsConfigDict:
    """The model config of a settings class: its prefix, frozen, from the environment and the optional file."""
    return SettingsConfigDict(
        env_prefix=env_prefix, frozen=True, env_file=env_file(), env_file_encoding="utf-8", extra="ignore"
    )
