"""Dead letters by reason for the dashboard, read from the dead-letter topic (they are not in the store).

A listing reads the topic from its start to its current end (``consumers/dlq/reader.py``: no group, no
commit), so it costs a pass over the topic: the answer is kept for ``ttl_s`` and a page load in between
reads nothing; a failure is kept as long, so a broker that is down costs one timeout per ``ttl_s``, not
one per page. The reader is built by whoever knows the broker (``usagemeter serve``) and handed to the app.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from usagemeter.consumers.dlq.reader import count_by, read_dead_letters
from usagemeter.consumers.settings import KafkaSettings
from usagemeter.dashboard.overview import DeadLetterCounts


def dead_letter_reasons(kafka: KafkaSettings, *, ttl_s: float = 30.0) -> DeadLetterCounts:
    """A ``DeadLetterCounts`` over ``kafka.dlq_topic`` that reads the topic at most once per ``ttl_s``."""
    lock = threading.Lock()
    cached: list[tuple[float, Mapping[str, int] | Exception]] = []

    def counts() -> Mapping[str, int]:
        with lock:
            if not cached or time.monotonic() - cached[0][0] >= ttl_s:
                try:
                    found: Mapping[str, int] | Exception = dict(
                        count_by(read_dead_letters(kafka), lambda letter: letter.reason)
                    )
                except Exception as exc:  # kept, and raised to every caller until the next read
                    found = exc
                cached[:] = [(time.monotonic(), found)]
            answer = cached[0][1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return counts
