"""What an import loads: a reader of reports loads no web framework, price data or worker; ``import
usagemeter`` loads none of its parts; the root's public names are the parts' own objects."""

from __future__ import annotations

import subprocess
import sys

import pytest

import usagemeter
from usagemeter.producers import UsageEmitter
from usagemeter.query import UsageReport, fetch_usage, get_usage
from usagemeter.schemas import UsageEvent
from usagemeter.schemas.errors import UsageMeterError

WATCHED = (
    "fastapi",
    "genai_prices",
    "typer",
    "usagemeter.consumers",
    "usagemeter.pricing.pricebook",
    "usagemeter.query",
)


def _loaded_after(statement: str) -> set[str]:
    script = f"import sys\n{statement}\nprint(' '.join(m for m in {WATCHED!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    return set(result.stdout.split())


@pytest.mark.parametrize(
    ("statement", "loaded"),
    [
        pytest.param("import usagemeter", set(), id="the root package alone"),
        pytest.param("from usagemeter import UsageEmitter", set(), id="a producer through the root"),
        pytest.param("import usagemeter.query", {"usagemeter.query"}, id="a reader of reports"),
        pytest.param("from usagemeter import fetch_usage", {"usagemeter.query"}, id="a reader through the root"),
    ],
)
def test_an_import_loads_only_its_part(statement: str, loaded: set[str]) -> None:
    assert _loaded_after(statement) == loaded


def test_the_check_sees_what_the_api_loads() -> None:
    assert {"fastapi", "usagemeter.query"} <= _loaded_after("import usagemeter.api")


def test_the_root_names_are_the_parts_objects() -> None:
    assert (usagemeter.UsageEmitter, usagemeter.UsageEvent, usagemeter.UsageMeterError) == (
        UsageEmitter,
        UsageEvent,
        UsageMeterError,
    )
    assert (usagemeter.get_usage, usagemeter.fetch_usage, usagemeter.UsageReport) == (
        get_usage,
        fetch_usage,
        UsageReport,
    )
    with pytest.raises(AttributeError, match="no attribute 'app'"):
        _ = usagemeter.app  # type: ignore[attr-defined]
