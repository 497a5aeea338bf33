"""docs/configuration.md is what the settings classes say, every settings class is in it, and every setting has a
description; the optional ``.env`` is read (the environment winning), Kafka's TLS and SASL settings reach
librdkafka, and a bad value, from the file too, stops a command with one line naming the variable."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from usagemeter.cli.config_reference import SETTINGS, render
from usagemeter.cli.errors import describe
from usagemeter.consumers.settings import KafkaSettings

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "configuration.md"
SOURCES = ("cli", "api", "budgets", "query", "pricing", "consumers", "producers", "schemas", "deploy/local")


def test_the_committed_page_is_what_the_classes_render() -> None:
    assert PAGE.read_text() == render(), (
        "docs/configuration.md is stale: run `.venv/bin/python -m usagemeter.cli.config_reference > "
        "docs/configuration.md`"
    )


def test_every_settings_class_is_in_the_reference() -> None:
    defined = {
        match.group(1)
        for folder in SOURCES
        for path in (ROOT / folder).rglob("*.py")
        for match in re.finditer(r"^class (\w+)\(BaseSettings\)", path.read_text(), re.MULTILINE)
    }
    assert defined == {cls.__name__ for cls, _ in SETTINGS}


@pytest.mark.parametrize("cls", [pytest.param(cls, id=cls.__name__) for cls, _ in SETTINGS])
def test_every_setting_says_what_it_does(cls: type) -> None:
    fields = cls.model_fields  # type: ignore[attr-defined]
    assert [name for name, field in fields.items() if not field.description] == []


def test_a_dotenv_file_is_read_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text("USAGEMETER_KAFKA_TOPIC=from-file\nUSAGEMETER_KAFKA_GROUP_ID=file-group\nUNRELATED=1\n")
    monkeypatch.setenv("USAGEMETER_KAFKA_GROUP_ID", "env-group")
    settings = KafkaSettings(_env_file=env)  # type: ignore[call-arg]
    assert (settings.topic, settings.group_id) == ("from-file", "env-group")


def test_tls_and_sasl_settings_reach_librdkafka() -> None:
    settings = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="meter",
        sasl_password="s3cret",  # type: ignore[arg-type]
        ssl_ca_location=Path("/etc/kafka/ca.pem"),
        ssl_certificate_location=Path("/etc/kafka/client.pem"),
        ssl_key_location=Path("/etc/kafka/client.key"),
        ssl_key_password="k3y",  # type: ignore[arg-type]
        extra_config={"client.rack": "eu-1a", "security.protocol": "PLAINTEXT"},
    )
    config = settings.client_config()
    assert {k: v for k, v in config.items() if k != "logger"} == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "SASL_SSL",  # a typed setting wins over extra_config
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "meter",
        "sasl.password": "s3cret",
        "ssl.ca.location": "/etc/kafka/ca.pem",
        "ssl.certificate.location": "/etc/kafka/client.pem",
        "ssl.key.location": "/etc/kafka/client.key",
        "ssl.key.password": "k3y",
        "ssl.endpoint.identification.algorithm": "https",
        "client.rack": "eu-1a",
    }
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("given", "says"),
    [
        pytest.param({"security_protocol": "SASL_SSL"}, "USAGEMETER_KAFKA_SASL_MECHANISM is required with SASL_SSL",
                     id="sasl without mechanism"),
        pytest.param({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
                     "PLAIN needs USAGEMETER_KAFKA_SASL_USERNAME and _SASL_PASSWORD", id="plain without password"),
        pytest.param({"security_protocol": "TLS"}, "USAGEMETER_KAFKA_SECURITY_PROTOCOL=TLS: Input should be",
                     id="unknown protocol"),
    ],
)  # fmt: skip
def test_an_incomplete_security_setting_is_one_line(given: dict[str, str], says: str) -> None:
    with pytest.raises(ValidationError) as raised:
        KafkaSettings.model_validate(given)
    message, code = describe(raised.value)
    assert code == 2
    assert message.startswith(says), message
    assert "\n" not in message


def test_a_bad_value_in_the_dotenv_file_stops_a_command_in_one_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("USAGEMETER_CLICKHOUSE_DATABASE=bad-name\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("USAGEMETER_")}
    done = subprocess.run(
        [sys.executable, "-c", "from usagemeter.cli.app import main; main()", "migrate"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: USAGEMETER_CLICKHOUSE_DATABASE=bad-name: String should match pattern '^[A-Za-z_][A-Za-z0-9_]*$'"
    ]
