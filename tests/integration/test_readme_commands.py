"""Every other command and Python example of the README, run as written on a fresh broker and store.

The "Two commands" and "Running the pipeline" blocks have tests of their own (``test_demo.py``,
``test_readme_pipeline.py``); this file runs every other ```bash block's commands and every ```python
block, parsed out of README.md at test time, so a command or example added there runs here. Commands run
through ``bash -c`` in a fresh directory with only the environment changed (the test broker, new topics,
a new embedded store, a free API port) and the files the README says the user has: its ``overrides.toml``
(the README's own ```toml block) and a genai-prices ``data.json``. The one ``serve`` the commands start runs
in the background as the README describes; ``usagemeter overrides load`` and the Python example that opens
the embedded store itself run after it stopped, as the README says they must. Python examples name the
README's local defaults (broker ``127.0.0.1:9092``, API ``http://127.0.0.1:8765``): those two addresses,
and nothing else, are replaced by the test's.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import signal
import socket
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.fixtures.kafka import KafkaBroker, keys_in_topic
from tests.fixtures.snapshots import NEW_MODEL, with_model
from usagemeter.local.kafka import create_topic, delete_topics
from usagemeter.producers import UsageEmitter

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

ROOT = Path(__file__).resolve().parents[2]
TESTED_ELSEWHERE = {"Two commands", "Running the pipeline"}
LONG_RUNNING = {"serve", "worker"}
OWN_STORE = {("overrides", "load")}
"""Commands that open the embedded store themselves: the README runs them with no worker running."""
DEFAULT_BROKER, DEFAULT_API = "127.0.0.1:9092", "http://127.0.0.1:8765"
DEFAULT_TOPIC = "usage.events"
"""Where the README's emitters send (``UsageEmitter``'s default topic)."""
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>\w*)\n(?P<body>.*?)^(?P=indent)```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    section: str
    lang: str
    text: str


def readme_blocks() -> list[Block]:
    """Every fenced block of README.md, with the ``## `` section it is in, indentation removed."""
    blocks: list[Block] = []
    for part in ("\n" + (ROOT / "README.md").read_text()).split("\n## ")[1:]:
        section = part.split("\n", 1)[0].strip()
        for fence in FENCE.finditer(part):
            body = textwrap.dedent(fence["indent"] + fence["body"].replace("\n" + fence["indent"], "\n"))
            blocks.append(Block(section, fence["lang"], body))
    return blocks


def readme_commands() -> list[tuple[str, str]]:
    """(section, command) of every bash block not tested elsewhere, as written (``$(...)`` and ``$VAR`` are
    bash's to expand), comments removed."""
    commands: list[tuple[str, str]] = []
    for block in readme_blocks():
        if block.lang == "bash" and block.section not in TESTED_ELSEWHERE:
            lines = [line for line in block.text.splitlines() if shlex.split(line, comments=True)]
            commands += [(block.section, without_comment(line)) for line in lines]
    return commands


def without_comment(line: str) -> str:
    """The line up to its comment: the first `` #`` outside quotes (where shlex's comment handling cuts)."""
    words = shlex.split(line, comments=True)
    for cut in (found.start() for found in re.finditer(r"\s#", line)):
        if shlex.split(line[:cut]) == words:
            return line[:cut].strip()
    return line.strip()


def subcommand(command: str) -> tuple[str, ...]:
    """The words after ``usagemeter`` (variable assignments before it skipped): ``("dlq", "count")``;
    ``("curl",)`` for a request to the API."""
    words = [word for word in shlex.split(command) if not re.fullmatch(r"\w+=.*", word)]
    if words and words[0] == "curl":
        return ("curl",)
    assert words and Path(words[0]).name == "usagemeter", command
    return tuple(words[1:3])


def expected_output(code: str) -> list[str]:
    """What the example says it prints: the comment lines right under a ``print(...)`` line, or a
    ``print(...)  # 2: why`` line's value before the colon."""
    expected, lines = [], code.splitlines()
    for at, line in enumerate(lines):
        if not line.lstrip().startswith("print("):
            continue
        inline = re.search(r"\)\s+#\s*(\S+):\s", line)
        if inline:
            expected.append(inline[1])
            continue
        comments = []
        for following in lines[at + 1 :]:
            if not following.lstrip().startswith("#"):
                break
            comments.append(following.lstrip()[1:])
        if comments:
            expected.append(" ".join(" ".join(comments).split()))
    return expected


def admin_key_file(env: dict[str, str]) -> str:
    """Where ``serve`` writes its local admin key in the test's environment."""
    return str(Path(env["XDG_CONFIG_HOME"]) / "usagemeter" / "admin.key")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def workdir(
    tmp_path: Path, kafka_broker: KafkaBroker, kafka_topic: Callable[..., str]
) -> Iterator[tuple[Path, dict[str, str]]]:
    """A fresh directory (``.venv`` linked, the README's overrides.toml, a data.json) and its environment."""
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    tomls = [block.text for block in readme_blocks() if block.lang == "toml" and block.section == "Pricing"]
    assert len(tomls) == 1, "the Pricing section shows one overrides file"
    (tmp_path / "overrides.toml").write_text(tomls[0])
    (tmp_path / "data.json").write_bytes(with_model({"input_mtok": "1", "output_mtok": "2"}))
    api_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("USAGEMETER_")},
        "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "USAGEMETER_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "USAGEMETER_KAFKA_TOPIC": kafka_topic(2),
        "USAGEMETER_KAFKA_DLQ_TOPIC": kafka_topic(2),
        "USAGEMETER_CLICKHOUSE_DSN": f"chdb:///{tmp_path / 'store'}",
        "USAGEMETER_API_PORT": str(api_port),
        "USAGEMETER_API_URL": f"http://127.0.0.1:{api_port}",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # serve writes usagemeter/admin.key there, the rest read it
    }
    made = []
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers})
    if DEFAULT_TOPIC not in admin.list_topics(timeout=30).topics:  # `usagemeter topics create` makes it
        create_topic(kafka_broker.bootstrap_servers, DEFAULT_TOPIC, 1)
        made.append(DEFAULT_TOPIC)
    try:
        yield tmp_path, env
    finally:
        delete_topics(kafka_broker.bootstrap_servers, made)


def messages_in(bootstrap_servers: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": f"count-{uuid.uuid4().hex[:8]}"})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in partitions)
    finally:
        consumer.close()


def get_json(url: str, key_file: str | None = None) -> object:
    """The JSON at ``url``, asked with the admin key in ``key_file`` when given."""
    headers = {"authorization": f"Bearer {Path(key_file).read_text().strip()}"} if key_file else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as answer:
        return json.loads(answer.read())


def wait_for(what: str, check: Callable[[], bool], server: subprocess.Popen[str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert server.poll() is None, f"serve ended (exit {server.returncode}) while waiting for {what}"
        try:
            if check():
                return
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(0.3)
    pytest.fail(f"no {what} after {timeout_s:.0f} s")


def seed(env: dict[str, str], server: subprocess.Popen[str]) -> None:
    """What the commands are about: acme's usage (one model the book does not know yet) and one dead letter."""
    bootstrap, topic = env["USAGEMETER_KAFKA_BOOTSTRAP_SERVERS"], env["USAGEMETER_KAFKA_TOPIC"]
    quiet = {"logger": logging.getLogger("test.emitter")}
    with UsageEmitter(bootstrap, topic=topic, client_id="acme", spool_dir=None, kafka_config=quiet) as meter:
        for _ in range(2):
            meter.emit("gpt-4o-mini", provider="openai", user_id="alice", input_tokens=1000, output_tokens=200)
        meter.emit(NEW_MODEL, provider="openai", user_id="bob", request_id="req-42", input_tokens=100, output_tokens=10)
    key = str(uuid.uuid4())
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, b"\xc3\x01" + b"\x00" * 8 + b"\x02no such schema", key.encode())  # unknown_schema
    assert producer.flush(30) == 0
    api = env["USAGEMETER_API_URL"]

    def aggregated() -> bool:
        report = get_json(f"{api}/v1/usage?client_id=acme&period=month&tz=UTC", admin_key_file(env))
        return isinstance(report, dict) and report["total_requests"] == 3

    wait_for("usage of acme's 3 events", aggregated, server)
    assert keys_in_topic(bootstrap, env["USAGEMETER_KAFKA_DLQ_TOPIC"], {key}, timeout_s=30) >= {key}


def one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def assert_in(wanted: list[str], output: str) -> None:
    for text in wanted:
        assert text in output, f"{text!r} not in:\n{output}"


def check_dlq(command: str, output: str) -> None:
    words = subcommand(command)
    if words == ("dlq", "replay") and "--offsets" in command:  # positions the test's DLQ does not have
        assert_in(["replayed 0 dead letters from", ": nothing"], one_line(output))
    elif words == ("dlq", "replay"):
        assert_in(["would replay 1 dead letters" if "--dry-run" in command else "replayed 1 dead letters"], output)
    elif "--format json" not in command:
        assert_in(["unknown_schema"], output)


def check_prices(command: str, output: str) -> None:
    if subcommand(command) == ("prices", "update"):
        assert_in(["price book v2 in force"], output)
    elif "--json" in command:
        assert json.loads(output)["priced"] is True, output
    else:
        assert_in(["-> openai/"], output)


def check_reprice(command: str, output: str) -> None:
    assert_in(["would change (1 unknown models now priced)" if "--dry-run" in command else " changed ("], output)


def check_report(command: str, output: str) -> None:
    output = " ".join(output.split())  # a table's caption wraps at the table's width
    if "--output" in command:
        return
    if "--format json" in command:
        assert json.loads(output)["total"]["requests"] == 3, output
    elif "--format" in command:  # csv, focus: a header and rows naming acme's models or users
        assert_in(["alice" if "--by user" in command else "gpt-4o-mini"], output)
    elif "label:" in command:  # acme's seeded events carry no labels: an empty answer that says so
        assert_in(["unknown label 'feature'"], output)
    else:
        assert_in(["gpt-4o-mini", "late events"], output)


def check_curl(command: str, output: str) -> None:
    if "/v1/clients/" in command:
        check_client(command, output)
    elif "/dashboard/session" in command:
        assert output == "", output  # 204: the cookie is in the jar
    elif "/dashboard" in command:
        assert output.strip() == 'data-test="total-requests" data-value="3"', output  # read with the cookie
    elif "format=csv" in command or "/focus" in command:
        assert output.count("\n") >= 2, output  # a header and at least one row
    else:
        assert json.loads(output)["total"]["requests"] == 3, output


def check_client(command: str, output: str) -> None:
    """``usagemeter client ...`` and the same routes by curl: JSON about acme's three requests."""
    answer = json.loads(output)
    if "stats" in command:
        assert answer["total_requests"] == (2 if "alice" in command else 3), answer
    elif "activity" in command:
        assert (answer["successful_requests"], len(answer["recent_requests"])) == (3, 3), answer
    elif "req-42" in command:
        assert (answer["user_id"], answer["request_id"]) == ("bob", "req-42"), answer
    else:
        assert answer["requests_last_hour"] in {0, 3}, answer  # 3 when the test ran within the hour


def check_views(command: str, output: str) -> None:
    assert_in(["Aggregates rebuilt", "usage_15m_by_user: "], output)


def check_overrides(command: str, output: str) -> None:
    if subcommand(command) == ("overrides", "check"):
        assert_in(["2 model price overrides, 1 contract rules: valid"], output)
    else:
        assert_in(["loaded: "], output)


def check_budgets(command: str, output: str) -> None:
    words = subcommand(command)
    if words == ("budgets", "create"):
        assert_in([" v1: client acme"], output)
    elif words == ("budgets", "list"):
        assert_in(["acme-monthly", "alice-daily", "day in UTC"], output)
    elif words == ("budgets", "show"):
        assert_in(
            ["2026-01-01T00:00:00+01:00 .. 2026-02-01T00:00:00+01:00" if "--at" in command else "resets:"], output
        )
    elif words == ("budgets", "update"):
        assert_in([" v2: client acme, 25 usd per month in Europe/Berlin"], output)
    else:
        assert_in(["deleted b_"], output)


def check_keys(command: str, output: str) -> None:
    words = subcommand(command)
    if words == ("keys", "create"):
        assert one_line(output).startswith("umk_"), output  # the key alone on stdout
    elif words == ("keys", "list"):
        assert_in(["acme-dashboard", "local admin"], output)
    else:
        assert_in(["revoked 1 key: "], output)


OUTPUT_CHECKS: dict[str, Callable[[str, str], None]] = {
    "budgets": check_budgets,
    "dlq": check_dlq,
    "prices": check_prices,
    "reprice": check_reprice,
    "overrides": check_overrides,
    "report": check_report,
    "curl": check_curl,
    "keys": check_keys,
    "client": check_client,
    "views": check_views,
}
"""What the README says each command answers, on the test's data: acme's three events (one of a model
data.json adds) and one ``unknown_schema`` dead letter."""


def test_readme_commands_and_examples(workdir: tuple[Path, dict[str, str]], kafka_broker: KafkaBroker) -> None:
    cwd, env = workdir
    commands = readme_commands()
    examples = [block.text for block in readme_blocks() if block.lang == "python"]
    sections = {"Dead letters", "Pricing", "Price data updates", "Repricing", "Budgets and alerts", "Access control",
                "Dashboard"}  # fmt: skip
    assert {section for section, _ in commands} >= sections
    serves = [cmd for _, cmd in commands if subcommand(cmd)[0] in LONG_RUNNING]
    assert len(serves) == 1, f"one long-running command expected, the README shows {serves}"
    later = [cmd for _, cmd in commands if subcommand(cmd) in OWN_STORE]
    now = [cmd for _, cmd in commands if cmd not in serves and cmd not in later]
    direct = [code for code in examples if "connect(" in code]  # opens the embedded store itself
    through_serve = [code for code in examples if code not in direct]
    assert all(DEFAULT_BROKER in code for code in examples if "UsageEmitter(" in code)
    failures: list[str] = []

    def run(what: str, args: list[str], extra_env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            args, cwd=cwd, env={**env, **(extra_env or {})}, capture_output=True, text=True, timeout=120, check=False
        )
        print(f"$ {what}\n{done.stdout}{done.stderr}")  # the transcript, shown with -s or on failure
        if done.returncode != 0 or "Traceback" in done.stderr:
            failures.append(f"{what}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return done.stdout

    def run_command(command: str) -> None:
        command = command.replace(DEFAULT_API, env["USAGEMETER_API_URL"])  # curl examples name the default API
        failed = len(failures)
        output = run(command, ["bash", "-c", command])
        check = OUTPUT_CHECKS.get(subcommand(command)[0])
        if check and len(failures) == failed:
            try:
                check(command, output)
            except AssertionError as exc:
                failures.append(f"{command}: {exc}")

    def run_example(code: str) -> None:
        script = code.replace(DEFAULT_BROKER, env["USAGEMETER_KAFKA_BOOTSTRAP_SERVERS"])
        script = script.replace(DEFAULT_API, env["USAGEMETER_API_URL"])
        before = messages_in(env["USAGEMETER_KAFKA_BOOTSTRAP_SERVERS"], DEFAULT_TOPIC)
        # A service is given its key in USAGEMETER_API_KEY (the README's examples say so); here, serve's admin key.
        key = {"USAGEMETER_API_KEY": Path(admin_key_file(env)).read_text().strip()}
        output = " ".join(run(f"python example:\n{code}", [".venv/bin/python", "-c", script], key).split())
        for text in expected_output(code):
            if f" {text} " not in f" {output} ":
                failures.append(f"python example prints {output!r}, the README says {text!r}:\n{code}")
        after = messages_in(env["USAGEMETER_KAFKA_BOOTSTRAP_SERVERS"], DEFAULT_TOPIC)
        if "UsageEmitter(" in code and after <= before:
            failures.append(f"python example delivered nothing to {DEFAULT_TOPIC}:\n{code}")

    server_log = cwd / "serve.log"  # a file, not a pipe: a pipe nobody reads would stop serve once full
    with server_log.open("w") as log_file:
        server = subprocess.Popen(
            ["bash", "-c", serves[0]],
            cwd=cwd,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        healthz = f"{env['USAGEMETER_API_URL']}/healthz"
        wait_for("an answer from serve's API", lambda: get_json(healthz) is not None, server)
        seed(env, server)
        for command in now:
            run_command(command)
        for code in through_serve:
            run_example(code)
        assert server.poll() is None, f"serve ended: {server_log.read_text()[-3000:]}"
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    log = server_log.read_text()
    assert server.returncode == 0, f"{serves[0]} after SIGTERM: exit {server.returncode}\n{log[-3000:]}"
    assert "overrides loaded from overrides.toml" in log, f"serve did not load overrides.toml:\n{log[-3000:]}"
    for command in later:
        run_command(command)
    for code in direct:
        run_example(code)
    assert not failures, "\n\n".join(failures)
