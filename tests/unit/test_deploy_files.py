"""The deployment files agree with the code: every command the compose file and the Kubernetes manifests run is
a command of the CLI (with the options given), the start order holds (topics and migrations before any worker),
the image is non-root with a healthcheck and no Java, the metrics targets are the processes that serve them,
and the manifests render with ``kubectl kustomize`` into the objects a deployment needs.

``docker compose config -q`` (the compose file is valid for Compose itself) runs in tests/run.sh when the docker
client has the compose plugin, and here too; each tool that is absent is skipped with its reason printed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from usagemeter.cli.commands import app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose" / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
GRAFANA_FILES = (
    "deploy/grafana/provisioning/datasources/clickhouse.yaml",
    "deploy/grafana/provisioning/dashboards/usagemeter.yaml",
    "deploy/grafana/dashboards/usagemeter.json",
)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def ours(services: dict[str, Any]) -> dict[str, Any]:
    """The services that run the usagemeter image."""
    return {name: spec for name, spec in services.items() if "USAGEMETER_IMAGE" in str(spec.get("image", ""))}


def assert_cli_accepts(command: list[str]) -> None:
    """``usagemeter <command> --help`` succeeds: the command exists and takes the options given."""
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, f"`usagemeter {' '.join(command)}`: {result.output}"


def test_every_compose_service_runs_a_command_of_the_cli() -> None:
    services = ours(compose()["services"])
    assert set(services) == {"topics", "migrate", "worker-1", "worker-2", "api", "alerter"}
    reference = (ROOT / "docs" / "configuration.md").read_text()
    for spec in services.values():
        assert_cli_accepts(spec["command"])
        unknown = [name for name in spec["environment"] if f"`{name}`" not in reference]
        assert unknown == [], "every variable the compose file sets is a documented setting"


def test_workers_api_and_alerter_start_after_the_topics_and_migrations_jobs() -> None:
    services = compose()["services"]
    for name in ("worker-1", "worker-2", "api", "alerter"):
        after = services[name]["depends_on"]
        assert after == {
            "topics": {"condition": "service_completed_successfully"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name
    assert services["migrate"]["depends_on"] == {"clickhouse": {"condition": "service_healthy"}}
    assert services["topics"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}


def test_the_broker_is_single_node_kraft_and_clickhouse_has_its_user() -> None:
    services = compose()["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert {k: v for k, v in env.items() if "REPLICATION_FACTOR" in k} == {
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": 1,
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": 1,
    }
    clickhouse = services["clickhouse"]["environment"]
    assert {"CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD", "CLICKHOUSE_DB"} <= set(clickhouse)
    worker_env = services["worker-1"]["environment"]
    assert worker_env["USAGEMETER_CLICKHOUSE_USERNAME"] == clickhouse["CLICKHOUSE_USER"]
    assert worker_env["USAGEMETER_CLICKHOUSE_DATABASE"] == clickhouse["CLICKHOUSE_DB"]
    assert worker_env["USAGEMETER_CLICKHOUSE_PASSWORD"] == clickhouse["CLICKHOUSE_PASSWORD"]


def test_grafana_mounts_the_provisioning_files_at_their_agreed_paths() -> None:
    mounts = compose()["services"]["grafana"]["volumes"]
    sources = {str((COMPOSE.parent / m.split(":")[0]).resolve().relative_to(ROOT)) for m in mounts if m[0] == "."}
    assert sources == set(GRAFANA_FILES)
    env = compose()["services"]["grafana"]["environment"]
    needed = {"HOST", "PORT", "DATABASE", "USER", "PASSWORD"}  # what the datasource file expands
    assert {f"USAGEMETER_GRAFANA_CLICKHOUSE_{n}" for n in needed} <= set(env)


def test_prometheus_scrapes_every_process_with_metrics() -> None:
    config = yaml.safe_load((COMPOSE.parent / "prometheus.yml").read_text())
    groups = [group for job in config["scrape_configs"] for group in job["static_configs"]]
    targets = {target for group in groups for target in group["targets"]}
    services = ours(compose()["services"])
    expected = {"worker-1:9464", "worker-2:9464", "alerter:9464", "api:8765", "localhost:9090"}
    assert targets == expected
    for name in ("worker-1", "worker-2", "alerter"):
        assert services[name]["environment"]["USAGEMETER_METRICS_PORT"] == "9464"


def test_docker_compose_validates_the_file() -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker client here")
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip("the docker client has no compose plugin here")
    done = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_image_is_multi_stage_non_root_with_a_healthcheck_and_no_java() -> None:
    text = DOCKERFILE.read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len([line for line in instructions if line.startswith("FROM ")]) >= 2
    user = next(line for line in instructions if line.startswith("USER "))
    assert user.split()[1].split(":")[0] not in {"0", "root"}
    assert any(line.startswith("HEALTHCHECK ") for line in instructions)
    assert not re.search(r"\b(java|jdk|jre|maven)\b", "\n".join(instructions), re.IGNORECASE)
    assert 'ENTRYPOINT ["usagemeter"]' in instructions
    copied = {line.split()[1] for line in instructions if line.startswith("COPY ") and "--from" not in line}
    package_dirs = set(re.findall(r'^"usagemeter[.\w]*" = "([\w/]+)"', (ROOT / "pyproject.toml").read_text(), re.M))
    missing = [d for d in package_dirs if not any(f"{d}/".startswith(f"{c.rstrip('/')}/") for c in copied)]
    assert missing == [], "every package folder of pyproject.toml is in the image"


def kustomize(path: Path) -> list[dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: the manifests were not rendered")
    done = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def containers(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    pod = obj["spec"]["template"]["spec"]
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def test_the_manifests_render_into_the_objects_of_a_deployment() -> None:
    objects = by_kind(kustomize(KUSTOMIZE / "base"))
    assert set(objects) == {
        ("Namespace", "usagemeter"),
        ("ConfigMap", "usagemeter-config"),
        ("Secret", "usagemeter-secrets"),
        ("Job", "usagemeter-topics"),
        ("Job", "usagemeter-migrate"),
        ("StatefulSet", "usagemeter-worker"),
        ("Service", "usagemeter-worker"),
        ("PodDisruptionBudget", "usagemeter-worker"),
        ("Deployment", "usagemeter-api"),
        ("Service", "usagemeter-api"),
        ("PodDisruptionBudget", "usagemeter-api"),
        ("Deployment", "usagemeter-alerter"),
    }
    assert {o["metadata"].get("namespace") for k, o in objects.items() if k[0] != "Namespace"} == {"usagemeter"}
    workers = objects[("StatefulSet", "usagemeter-worker")]
    pod = workers["spec"]["template"]["spec"]
    worker = next(c for c in pod["containers"] if c["name"] == "worker")
    instance = next(e for e in worker["env"] if e["name"] == "USAGEMETER_KAFKA_GROUP_INSTANCE_ID")
    assert instance["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}, "static membership: the pod name"
    assert pod["terminationGracePeriodSeconds"] >= 60
    assert pod["securityContext"]["runAsNonRoot"] is True
    pdb = objects[("PodDisruptionBudget", "usagemeter-worker")]["spec"]
    assert pdb["selector"]["matchLabels"] == workers["spec"]["selector"]["matchLabels"]


def test_every_manifest_command_is_a_command_of_the_cli_and_settings_are_known() -> None:
    objects = kustomize(KUSTOMIZE / "base")
    for obj in objects:
        if obj["kind"] not in {"Job", "Deployment", "StatefulSet"}:
            continue
        for container in containers(obj):
            if "args" in container:
                assert_cli_accepts(container["args"])
            else:  # the init containers' wait loop
                assert "usagemeter migrate --check" in container["command"][-1]
                assert_cli_accepts(["migrate", "--check"])
    config = next(o for o in objects if o["kind"] == "ConfigMap")["data"]
    secret = next(o for o in objects if o["kind"] == "Secret")["stringData"]
    pods = [c for o in objects if o["kind"] in {"Job", "Deployment", "StatefulSet"} for c in containers(o)]
    env = [e["name"] for c in pods for e in c.get("env", []) if e["name"].startswith("USAGEMETER_")]
    reference = (ROOT / "docs" / "configuration.md").read_text()
    unknown = [name for name in [*config, *secret, *env] if f"`{name}`" not in reference]
    assert unknown == [], "every variable the manifests set is a documented setting"


def test_the_keda_overlay_scales_the_worker_statefulset_on_the_groups_lag() -> None:
    objects = by_kind(kustomize(KUSTOMIZE / "overlays" / "keda"))
    scaled = objects[("ScaledObject", "usagemeter-worker")]
    assert scaled["metadata"]["namespace"] == "usagemeter"
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "name": "usagemeter-worker"
    }  # fmt: skip
    trigger = scaled["spec"]["triggers"][0]
    config = objects[("ConfigMap", "usagemeter-config")]["data"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["bootstrapServers"] == config["USAGEMETER_KAFKA_BOOTSTRAP_SERVERS"]
    assert trigger["metadata"]["consumerGroup"] == config["USAGEMETER_KAFKA_GROUP_ID"]
    assert trigger["metadata"]["topic"] == config["USAGEMETER_KAFKA_TOPIC"]
    assert int(trigger["metadata"]["lagThreshold"]) > 0
    assert scaled["spec"]["maxReplicaCount"] <= 8, "no more workers than partitions"
