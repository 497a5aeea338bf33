"""The dedup window's memory, lookup speed, false positives and rebuild time, against the 16-byte design.

``python -m benchmarks.dedup_memory [--ids 86400000] [--store-ids 86400000]``: a window of ``--ids``
random ids spread over 24 h (a day at 1,000 events/s by default) held by a child process that has the
worker's modules and an embedded store open (its RSS is the worker's figure); lookups of batches of
100,000 against it and against the old design (two uint64 an id in sorted arrays, kept here only as the
baseline); the measured false-positive rate; and a restart: a synthetic ``ingested_ids`` of
``--store-ids`` rows (generated in SQL, not by a worker), the window rebuilt from it as a newly assigned
partition does, then one batch checked exactly, inserted and its slice completed: the store's side of
a restarted worker's first commit (the Kafka group join comes on top, see BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
from clickhouse_connect.driver.client import Client
from confluent_kafka import TIMESTAMP_CREATE_TIME, Message

from benchmarks.worker_throughput import fresh_database
from usagemeter.consumers.batch import Batch
from usagemeter.consumers.dedup import Deduplicator
from usagemeter.consumers.id_window import U64, IdWindow, Mask
from usagemeter.consumers.ledger import Ledger
from usagemeter.consumers.settings import WorkerSettings
from usagemeter.consumers.sink import ClickHouseSink
from usagemeter.consumers.writer import BatchWriter
from usagemeter.schemas import CURRENT
from usagemeter.schemas.validation import Rejection
from usagemeter.schemas.wire import encode

DAY_S = 86_400.0
BATCH = 100_000
_CHUNK = 500_000
"""Ids generated and added at a time: a rebuild adds the store's blocks of ~65,000 rows."""
_TOPIC = "usage.events"

_HOLD = """
import json, resource, sys, tempfile, time
import numpy as np
import numpy.typing as npt
from usagemeter.consumers import pipeline  # the worker's modules, as a worker has them
from usagemeter.consumers.settings import ClickHouseSettings
from usagemeter.consumers.store import connect
from benchmarks.dedup_memory import filled_window, rss_mb
client = connect(ClickHouseSettings(dsn="chdb://" + tempfile.mkdtemp()))
base = rss_mb()
started = time.perf_counter()
window = filled_window(int(sys.argv[1]), now=float(sys.argv[2]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rss_mb": rss_mb(), "base_rss_mb": base, "peak_rss_mb": peak, "filter_bytes": window.nbytes,
                  "ids": len(window), "fill_s": time.perf_counter() - started}))
"""


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def random_ids(count: int, seed: int) -> tuple[U64, U64]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2**64, count, dtype=np.uint64), rng.integers(0, 2**64, count, dtype=np.uint64)


def filled_window(count: int, now: float) -> IdWindow:
    """A window holding ``count`` ids inserted evenly over the 24 h before ``now`` (as a rebuild fills it)."""
    window = IdWindow(DAY_S)
    starts = range(0, count, _CHUNK)
    reserved: Counter[int] = Counter()
    for start in starts:  # as the rebuild sizes the buckets, from the store's counts
        buckets, counts = np.unique(_times(start, count, now) // window.bucket_s, return_counts=True)
        reserved.update(dict(zip(buckets.astype(int).tolist(), counts.tolist(), strict=True)))
    for bucket, held in reserved.items():
        window.reserve(bucket, held)
    for start in starts:
        at = _times(start, count, now)
        window.add_at(*random_ids(len(at), seed=start), at)
    return window


def _times(start: int, count: int, now: float) -> npt.NDArray[np.float64]:
    """Insert times of ids ``start`` to ``start + _CHUNK`` of ``count`` spread evenly over the day."""
    return now - DAY_S + (start + np.arange(min(_CHUNK, count - start), dtype=np.float64)) * (DAY_S / count)


class SixteenBytes:
    """The replaced design, as the baseline: each id as two uint64 in one run sorted by the low half."""

    def __init__(self, hi: U64, lo: U64) -> None:
        order = np.argsort(lo)
        self.hi, self.lo = hi[order], lo[order]
        self.nbytes = self.hi.nbytes + self.lo.nbytes

    def contains(self, hi: U64, lo: U64) -> Mask:
        at = np.minimum(np.searchsorted(self.lo, lo), len(self.lo) - 1)
        found: Mask = (self.lo[at] == lo) & (self.hi[at] == hi)
        return found


def _per_batch_ms(contains: object, hi: U64, lo: U64) -> float:
    assert callable(contains)
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        contains(hi, lo)
        timings.append(time.perf_counter() - started)
    return min(timings) * 1000


def lookups(count: int, now: float) -> dict[str, float]:
    """Both designs holding the same ``count`` ids; batches of 100,000 half present, half not."""
    window = filled_window(count, now)
    chunks = [random_ids(min(_CHUNK, count - start), seed=start) for start in range(0, count, _CHUNK)]
    old_hi, old_lo = np.concatenate([hi for hi, _ in chunks]), np.concatenate([lo for _, lo in chunks])
    old = SixteenBytes(old_hi, old_lo)
    strangers_hi, strangers_lo = random_ids(BATCH, seed=-1 % 2**32)
    probe_hi = np.concatenate((old_hi[: BATCH // 2], strangers_hi[: BATCH // 2]))
    probe_lo = np.concatenate((old_lo[: BATCH // 2], strangers_lo[: BATCH // 2]))
    assert window.contains(probe_hi[: BATCH // 2], probe_lo[: BATCH // 2]).all(), "no false negative"
    return {
        "ids": count,
        "old_bytes_per_id": old.nbytes / count,
        "new_bytes_per_id": window.nbytes / count,
        "old_ms_per_batch": _per_batch_ms(old.contains, probe_hi, probe_lo),
        "new_ms_per_batch": _per_batch_ms(window.contains, probe_hi, probe_lo),
        "false_positive_rate": float(window.contains(strangers_hi, strangers_lo).mean()),
    }


def held_window(count: int, now: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _HOLD, str(count), str(now)], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def restart(count: int, now: float) -> dict[str, float]:
    """A synthetic day of ``ingested_ids`` for partition 0; the rebuild and the first batch's store work."""
    client = fresh_database("chdb://" + tempfile.mkdtemp())
    started = time.perf_counter()
    client.command(
        "INSERT INTO ingested_ids (topic, partition, slice_first, event_id, ingested_at)"
        " SELECT {topic:String}, 0, intDiv(number, 1000) * 1000, generateUUIDv4(number),"
        " toDateTime({start:DateTime}) + intDiv(number * 86400, {count:UInt64}) FROM numbers({count:UInt64})",
        parameters={
            "topic": _TOPIC,
            "start": datetime.fromtimestamp(now - DAY_S, UTC).replace(tzinfo=None),
            "count": count,
        },
    )
    loaded_s = time.perf_counter() - started
    return {"store_ids": count, "store_load_s": loaded_s, **first_batch(client, now)}


def first_batch(client: Client, now: float, size: int = 2_000) -> dict[str, float]:
    """Partition 0 assigned (its window rebuilt from the store), then one batch, half of it re-sent
    events, checked exactly and written: what a restarted worker does before its first commit."""
    ledger = Ledger(client)
    dedup = Deduplicator(ledger, DAY_S)
    started = time.perf_counter()
    dedup.assign(_TOPIC, {0: 10**9}, now)
    rebuilt_s = time.perf_counter() - started
    resent = [
        str(row[0])
        for row in client.query(
            "SELECT event_id FROM ingested_ids LIMIT {n:UInt32}", parameters={"n": size // 2}
        ).result_rows
    ]
    ids = resent + [str(uuid.uuid4()) for _ in range(size - len(resent))]
    now_us = int(now * 1e6)
    batch = Batch(time.monotonic())
    batch.add(
        [
            Message(
                topic=_TOPIC,
                partition=0,
                offset=10**9 + i,
                key=event_id.encode(),
                value=encode(CURRENT, {"event_id": event_id, "event_time": now_us, "client_id": "a", "model": "m"}),
                timestamp=(TIMESTAMP_CREATE_TIME, 0),
            )
            for i, event_id in enumerate(ids)
        ]
    )
    batch.reference_us = now_us
    started = time.perf_counter()
    admitted = dedup.drop_seen(batch, now)
    suspects = sum(int(part.maybe.sum()) for part in admitted.groups)
    dedup.confirm(batch, admitted)
    checked_s = time.perf_counter() - started
    writer = BatchWriter(ClickHouseSink(client), ledger, _NoDeadLetters(), WorkerSettings())
    writer.write(batch)
    assert admitted.dropped == len(resent), (admitted.dropped, len(resent))
    return {
        "rebuild_s": rebuilt_s,
        "batch_ids": size,
        "suspects": suspects,
        "dropped": admitted.dropped,
        "exact_check_s": checked_s,
        "rebuild_to_written_s": time.perf_counter() - started + rebuilt_s,
    }


class _NoDeadLetters:
    def send(self, msg: Message, rejection: Rejection) -> None:
        raise AssertionError(f"no event here is bad: {rejection}")

    def flush(self, timeout_s: float = 30.0) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=86_400_000, help="ids the held window remembers")
    parser.add_argument("--lookup-ids", type=int, default=20_000_000, help="ids both designs hold for lookups")
    parser.add_argument("--store-ids", type=int, default=86_400_000, help="rows of the synthetic ingested_ids")
    args = parser.parse_args()
    now = time.time()
    report = {"held": held_window(args.ids, now), "lookups": lookups(args.lookup_ids, now)}
    print(json.dumps(report, indent=1), flush=True)
    report["restart"] = restart(args.store_ids, now)
    print(json.dumps(report["restart"], indent=1))


if __name__ == "__main__":
    main()
