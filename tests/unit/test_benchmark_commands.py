"""Every benchmark the suite runs (``python -m benchmarks``) parses its suite arguments: a benchmark renamed,
or an option the suite passes and the benchmark no longer takes, fails here rather than in a 30-minute run."""

from __future__ import annotations

import argparse
import importlib
import sys

import pytest

from benchmarks.__main__ import MODULE_OF, SUITE


@pytest.mark.parametrize("name", list(SUITE))
def test_the_suite_arguments_are_accepted(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = importlib.import_module(f"benchmarks.{MODULE_OF.get(name, name)}")
    parsed: list[argparse.Namespace] = []
    original = argparse.ArgumentParser.parse_args

    def stop_after_parsing(self: argparse.ArgumentParser) -> None:
        parsed.append(original(self))
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", stop_after_parsing)
    monkeypatch.setattr(sys, "argv", [name, *SUITE[name].split()])
    with pytest.raises(SystemExit) as exited:
        module.main()
    assert exited.value.code == 0 and parsed
