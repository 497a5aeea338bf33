"""A single-node Apache Kafka (KRaft broker and controller in one JVM) on 127.0.0.1, from Maven jars.

Why this exists: no Kafka broker is packaged in PyPI, npm or Debian here, and there is no Docker. Apache
Kafka's own jars from Maven Central run with plain ``java``, so the launcher fetches them once with
``mvn`` (``pom.xml`` next to this file) into a cache shared by every checkout, writes a
``server.properties``, formats the metadata log the first time, and starts ``kafka.Kafka`` detached.

Files in the data dir (default ``.var/usagemeter/kafka``)::

    server.properties   written on every start from the constructor's settings
    kraft/              the broker's log.dirs (metadata log and topic data); formatted once
    logs/server.log     the broker's log4j2 log (see log4j2.xml), INFO and up
    kafka.out           the JVM's stdout and stderr (start-up crashes land here)
    kafka.pid           the pid of the running broker

Errors::

    LocalKafkaError          anything that stops the broker from being fetched, started or used
     +-- ToolMissingError    java or mvn is not on PATH (the message says how to install it)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from usagemeter.schemas.errors import LocalKafkaError, ToolMissingError

__all__ = [
    "KAFKA_VERSION",
    "LocalKafka",
    "LocalKafkaError",
    "StartResult",
    "Status",
    "ToolMissingError",
    "create_topic",
    "default_cache_dir",
    "delete_topics",
]

KAFKA_VERSION = "4.1.1"
DEFAULT_DATA_DIR = Path(".var/usagemeter/kafka")
DEFAULT_PORT = 9092
DEFAULT_CONTROLLER_PORT = 9093
HOST = "127.0.0.1"

_INSTALL_HINTS = {
    "java": "a Java 17+ runtime; on Debian/Ubuntu: apt-get install openjdk-17-jre-headless maven"
    " (macOS: brew install openjdk@17 maven)",
    "mvn": "Apache Maven, which fetches the Kafka jars once; on Debian/Ubuntu: apt-get install maven"
    " (macOS: brew install maven)",
}
_COMPLETE_MARKER = "COMPLETE"
_ADMIN_CONFIG = {
    "socket.connection.setup.timeout.ms": 2000,
    "log_level": 3,  # errors only: a short-lived admin client's informational lines are noise on a terminal
}


@dataclass(frozen=True, slots=True)
class StartResult:
    """What ``start()`` did: started a new broker, or found one already running from this data dir."""

    pid: int
    already_running: bool
    seconds_to_answer: float
    bootstrap_servers: str


@dataclass(frozen=True, slots=True)
class Status:
    """A snapshot of the broker of one data dir."""

    running: bool
    answering: bool
    pid: int | None
    bootstrap_servers: str
    data_dir: Path
    log_file: Path


def default_cache_dir() -> Path:
    """Where the jars go: shared by all checkouts, so a fresh clone does not fetch 54 MB again."""
    home = os.environ.get("USAGEMETER_HOME")
    base = Path(home) if home else Path.home() / ".cache" / "usagemeter"
    return base / f"kafka-{KAFKA_VERSION}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (tests run brokers side by side)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def require_tool(name: str) -> str:
    """The full path of ``name``, or a ToolMissingError that says how to install it."""
    path = shutil.which(name)
    if path is None:
        hint = _INSTALL_HINTS.get(name, name)
        raise ToolMissingError(f"`{name}` is not on PATH; the local Kafka broker needs {hint}")
    return path


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock, so two processes never fetch jars or start a broker at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 20) -> str:
    """The end of a log file for an error message: its last ERROR lines if it has any, else its last lines."""
    try:
        all_lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"({path} does not exist)"
    errors = [line for line in all_lines if " ERROR " in line or " FATAL " in line]
    return "\n".join((errors or all_lines)[-lines:])


def _pid_alive(pid: int) -> bool:
    """True when ``pid`` runs and is a Kafka JVM (a recycled pid or a zombie does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if not proc.exists():  # not Linux: trust kill(0)
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes()
    except (FileNotFoundError, IndexError):
        return False
    # An empty command line is a process in the middle of exec (seen under load right after the spawn).
    return state != "Z" and (not cmdline or b"kafka.Kafka" in cmdline)


def _answers(bootstrap_servers: str, timeout_s: float) -> bool:
    """True when a broker serves metadata. Checks the TCP port first, so librdkafka logs no refusals."""
    host, port = bootstrap_servers.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError:
        return False
    admin = _admin(bootstrap_servers)
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def _admin(bootstrap_servers: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap_servers, **_ADMIN_CONFIG})


def create_topic(bootstrap_servers: str, name: str, partitions: int = 1, timeout_s: float = 30.0) -> None:
    """Create one topic with replication factor 1 and wait until the controller has it."""
    admin = _admin(bootstrap_servers)  # keep a reference: the futures fail if the client is collected
    topic = NewTopic(name, num_partitions=partitions, replication_factor=1)
    future = admin.create_topics([topic], operation_timeout=timeout_s)[name]
    try:
        future.result(timeout=timeout_s)
    except KafkaException as exc:
        raise LocalKafkaError(f"could not create topic {name!r} on {bootstrap_servers}: {exc}") from exc


def delete_topics(bootstrap_servers: str, names: list[str], timeout_s: float = 30.0) -> None:
    """Delete topics; one that is already gone is not an error."""
    if not names:
        return
    admin = _admin(bootstrap_servers)
    futures = admin.delete_topics(names, operation_timeout=timeout_s)
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            if "UNKNOWN_TOPIC" not in str(exc):
                raise LocalKafkaError(f"could not delete topic {name!r} on {bootstrap_servers}: {exc}") from exc


class LocalKafka:
    """One local broker: fetch its jars, start it, stop it, ask how it is.

    ``port=0`` (and ``controller_port=0``) picks free ports at construction, for tests that must not
    collide with a developer's broker on 9092.
    """

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        port: int = DEFAULT_PORT,
        controller_port: int = DEFAULT_CONTROLLER_PORT,
        cache_dir: Path | str | None = None,
        num_partitions: int = 1,
        heap: str = "512m",
        start_timeout_s: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir if data_dir is not None else DEFAULT_DATA_DIR).absolute()
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        if self.controller_port == self.port:
            raise LocalKafkaError(f"port and controller port must differ (both are {self.port})")
        self.cache_dir = Path(cache_dir).absolute() if cache_dir is not None else default_cache_dir()
        self.num_partitions = num_partitions
        self.heap = heap
        self.start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    # -- paths ---------------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def libs_dir(self) -> Path:
        return self.cache_dir / "libs"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / "server.log"

    @property
    def _out_file(self) -> Path:
        return self.data_dir / "kafka.out"

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / "kafka.pid"

    @property
    def _kraft_dir(self) -> Path:
        return self.data_dir / "kraft"

    @property
    def _properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    # -- jars ----------------------------------------------------------------------------------

    def ensure_jars(self) -> Path:
        """Fetch the Kafka jars into the cache once; return the libs dir.

        The cache is complete when its marker holds the hash of the pom it was fetched with, so an
        interrupted fetch or a changed pom fetches again. A file lock makes a second concurrent caller
        (two test sessions, CI steps) wait for the first and then find the cache complete.
        """
        pom = resources.files("usagemeter.local").joinpath("pom.xml").read_bytes()
        digest = hashlib.sha256(pom).hexdigest()
        if self._jars_complete(digest):
            return self.libs_dir
        with _file_lock(self.cache_dir / ".lock"):
            if not self._jars_complete(digest):
                self._fetch_jars(pom, digest)
        return self.libs_dir

    def _jars_complete(self, digest: str) -> bool:
        marker = self.cache_dir / _COMPLETE_MARKER
        return marker.exists() and marker.read_text().strip() == digest and self.libs_dir.is_dir()

    def _fetch_jars(self, pom: bytes, digest: str) -> None:
        """Run ``mvn dependency:copy-dependencies`` into a fresh dir, then move it into place."""
        require_tool("java")
        mvn = require_tool("mvn")
        staging = self.cache_dir / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        (self.cache_dir / _COMPLETE_MARKER).unlink(missing_ok=True)
        pom_file = self.cache_dir / "pom.xml"
        pom_file.write_bytes(pom)
        command = [mvn, "-q", "-B", "-f", str(pom_file), "dependency:copy-dependencies", f"-DoutputDirectory={staging}"]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            output = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
            raise LocalKafkaError(f"fetching the Kafka {KAFKA_VERSION} jars failed ({' '.join(command)}):\n{output}")
        shutil.rmtree(self.libs_dir, ignore_errors=True)
        staging.rename(self.libs_dir)
        (self.cache_dir / _COMPLETE_MARKER).write_text(digest + "\n")

    # -- configuration -------------------------------------------------------------------------

    def server_properties(self) -> str:
        """The broker's configuration: one node that is both broker and controller, local only."""
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"{HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self._kraft_dir),
            "num.partitions": str(self.num_partitions),
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Tests and local runs join a group once; the default 3 s delay only slows them down.
            "group.initial.rebalance.delay.ms": "0",
            # A misspelt topic must fail loudly, not appear empty.
            "auto.create.topics.enable": "false",
        }
        lines = ["# Written by usagemeter.local.kafka on every start; edits are overwritten."]
        lines += [f"{key}={value}" for key, value in settings.items()]
        return "\n".join(lines) + "\n"

    def _java_command(self, java: str, *args: str) -> list[str]:
        log4j2 = resources.files("usagemeter.local").joinpath("log4j2.xml")
        return [
            java,
            f"-Dlog4j2.configurationFile={log4j2}",
            f"-Dkafka.logs.dir={self.log_file.parent}",
            "-cp",
            f"{self.libs_dir}/*",
            *args,
        ]

    def _format_storage_once(self, java: str) -> None:
        """Format the KRaft metadata log with a new cluster id, unless it already holds one."""
        if (self._kraft_dir / "meta.properties").exists():
            return
        cluster_id = self._run_java(java, "kafka.tools.StorageTool", "random-uuid").strip().splitlines()[-1]
        properties = str(self._properties_file)
        self._run_java(java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", properties, "--standalone")

    def _run_java(self, java: str, *args: str) -> str:
        done = subprocess.run(self._java_command(java, *args), capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise LocalKafkaError(f"`{' '.join(args)}` failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> StartResult:
        """Start the broker unless one from this data dir runs already; return once it answers.

        Idempotent: with a live broker in the pid file this only waits until it answers (it may be
        starting in another process). Raises LocalKafkaError with the log tail when the broker dies
        or does not answer within ``start_timeout_s``.
        """
        java = require_tool("java")
        self.ensure_jars()
        began = time.monotonic()
        with _file_lock(self.data_dir / ".lock"):
            pid = self._live_pid()
            if pid is not None:
                self._wait_until_answering(pid, began)
                return StartResult(pid, True, time.monotonic() - began, self.bootstrap_servers)
            self._properties_file.write_text(self.server_properties())
            self._format_storage_once(java)
            began = time.monotonic()
            pid = self._spawn(java)
        self._wait_until_answering(pid, began)
        return StartResult(pid, False, time.monotonic() - began, self.bootstrap_servers)

    def _spawn(self, java: str) -> int:
        """Start the JVM in its own session (a Ctrl-C in the terminal does not reach it)."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        command = self._java_command(java, "kafka.Kafka", str(self._properties_file))
        command.insert(1, f"-Xmx{self.heap}")
        with self._out_file.open("ab") as out:
            self._process = subprocess.Popen(  # noqa: S603
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._pid_file.write_text(f"{self._process.pid}\n")
        return self._process.pid

    def _wait_until_answering(self, pid: int, began: float) -> None:
        while time.monotonic() - began < self.start_timeout_s:
            if not self._alive(pid):
                self._pid_file.unlink(missing_ok=True)
                raise LocalKafkaError(f"the Kafka broker (pid {pid}) exited during start-up.\n{self._log_tails()}")
            if _answers(self.bootstrap_servers, timeout_s=1.0):
                return
            time.sleep(0.2)
        raise LocalKafkaError(
            f"the Kafka broker (pid {pid}) did not answer on {self.bootstrap_servers} within "
            f"{self.start_timeout_s:.0f} s (another broker from this data dir on a different port? "
            f"try `usagemeter kafka stop --data-dir {self.data_dir}`).\n{self._log_tails()}"
        )

    def _log_tails(self) -> str:
        return f"--- {self._out_file}:\n{_tail(self._out_file)}\n--- {self.log_file}:\n{_tail(self.log_file)}"

    def stop(self, timeout_s: float = 20.0) -> bool:
        """Stop the broker: SIGTERM, wait up to ``timeout_s``, then SIGKILL. False when none ran."""
        pid = self._live_pid()
        if pid is None:
            self._pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        if not self._wait_for_exit(pid, timeout_s):
            os.kill(pid, signal.SIGKILL)
            self._wait_for_exit(pid, 5.0)
        self._pid_file.unlink(missing_ok=True)
        return True

    def _wait_for_exit(self, pid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self._alive(pid):
                return True
            time.sleep(0.1)
        return False

    def _alive(self, pid: int) -> bool:
        """Reaps our own child first (else it lingers as a zombie), then asks /proc, the one source of truth."""
        if self._process is not None and self._process.pid == pid:
            self._process.poll()
        return _pid_alive(pid)

    def _live_pid(self) -> int | None:
        try:
            pid = int(self._pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if self._alive(pid) else None

    def status(self) -> Status:
        pid = self._live_pid()
        answering = pid is not None and _answers(self.bootstrap_servers, timeout_s=2.0)
        return Status(pid is not None, answering, pid, self.bootstrap_servers, self.data_dir, self.log_file)

    # -- topics --------------------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int | None = None) -> None:
        create_topic(self.bootstrap_servers, name, partitions or self.num_partitions)
