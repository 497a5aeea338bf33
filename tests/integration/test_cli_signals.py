"""A SIGTERM while ``usagemeter worker`` starts is a stop request: the command ends cleanly (exit 0)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.kafka import KafkaBroker

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

USAGEMETER = str(Path(sys.executable).parent / "usagemeter")


@pytest.mark.parametrize("after_s", [pytest.param(0.3, id="while-importing"), pytest.param(1.5, id="preparing")])
def test_sigterm_during_start_up_exits_cleanly(
    after_s: float, kafka_broker: KafkaBroker, kafka_topic: Callable[..., str], tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "USAGEMETER_KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "USAGEMETER_KAFKA_TOPIC": kafka_topic(1),
        "USAGEMETER_KAFKA_DLQ_TOPIC": kafka_topic(1),
        "USAGEMETER_KAFKA_GROUP_ID": f"test-{uuid.uuid4().hex[:8]}",
        "USAGEMETER_CLICKHOUSE_DSN": f"chdb:///{tmp_path / 'chdb'}",
    }
    process = subprocess.Popen(
        [USAGEMETER, "worker"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        time.sleep(after_s)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output.decode(errors="replace")[-3000:]
    assert b"Traceback" not in output, output.decode(errors="replace")[-3000:]
