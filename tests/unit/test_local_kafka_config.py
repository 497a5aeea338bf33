"""LocalKafka without a broker: tool checks, the generated server.properties, where jars are cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from usagemeter.local.kafka import KAFKA_VERSION, LocalKafka, default_cache_dir
from usagemeter.schemas.errors import ToolMissingError


def _properties(kafka: LocalKafka) -> dict[str, str]:
    lines = [line for line in kafka.server_properties().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_missing_java_names_the_tool_and_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    kafka = LocalKafka(tmp_path / "data", cache_dir=tmp_path / "cache")
    with pytest.raises(ToolMissingError, match=r"`java` is not on PATH.*apt-get install openjdk-17-jre-headless"):
        kafka.start()


def test_missing_maven_names_the_tool_when_jars_must_be_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "java").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    kafka = LocalKafka(tmp_path / "data", cache_dir=tmp_path / "cache")
    with pytest.raises(ToolMissingError, match=r"`mvn` is not on PATH.*apt-get install maven"):
        kafka.ensure_jars()


def test_server_properties_bind_to_loopback_only(tmp_path: Path) -> None:
    props = _properties(LocalKafka(tmp_path, port=19092, controller_port=19093))
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert props["process.roles"] == "broker,controller"


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("offsets.topic.replication.factor", id="consumer offsets"),
        pytest.param("transaction.state.log.replication.factor", id="transactions"),
        pytest.param("default.replication.factor", id="new topics"),
    ],
)
def test_single_node_replication_factors_are_one(tmp_path: Path, key: str) -> None:
    assert _properties(LocalKafka(tmp_path))[key] == "1"


def test_server_properties_settings_for_tests(tmp_path: Path) -> None:
    props = _properties(LocalKafka(tmp_path, num_partitions=6))
    assert props["auto.create.topics.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["num.partitions"] == "6"
    assert props["log.dirs"].startswith(str(tmp_path))


def test_free_port_mode_picks_two_ports(tmp_path: Path) -> None:
    kafka = LocalKafka(tmp_path, port=0, controller_port=0)
    assert kafka.port > 0
    assert kafka.controller_port > 0
    assert kafka.port != kafka.controller_port
    assert kafka.bootstrap_servers == f"127.0.0.1:{kafka.port}"


def test_cache_dir_follows_usagemeter_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USAGEMETER_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / f"kafka-{KAFKA_VERSION}"
    assert LocalKafka(tmp_path / "data").cache_dir == tmp_path / f"kafka-{KAFKA_VERSION}"


def test_stop_without_a_broker_is_a_no_op(tmp_path: Path) -> None:
    kafka = LocalKafka(tmp_path)
    assert kafka.stop() is False
    assert kafka.status().running is False
