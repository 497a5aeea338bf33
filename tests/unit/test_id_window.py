"""``IdWindow`` and ``parse_keys``: the cross-batch dedup filter must never forget an id early (no false
negatives), and must suspect few others (each suspect costs an exact lookup in ``ingested_ids``)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from usagemeter.consumers.id_window import U64, IdWindow, parse_keys

DAY = 86_400.0


def ids(count: int) -> list[bytes]:
    return [str(uuid.uuid4()).encode() for _ in range(count)]


def test_keys_parse_to_the_uuid_halves_in_either_case() -> None:
    key = uuid.uuid4()
    hi, lo, ok = parse_keys([str(key).encode(), str(key).upper().encode()])
    assert ok.tolist() == [True, True]
    assert hi.tolist() == [key.int >> 64] * 2
    assert lo.tolist() == [key.int & (2**64 - 1)] * 2


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(None, id="no key"),
        pytest.param(b"", id="empty"),
        pytest.param(b"order-42", id="not a uuid"),
        pytest.param(uuid.uuid4().hex.encode(), id="hex without dashes"),
        pytest.param(b"0123456789ab-cdef-0123-4567-89abcdef0123"[:36].replace(b"-", b"x"), id="no dashes at all"),
        pytest.param(str(uuid.uuid4()).encode()[:-1] + b"g", id="a non-hex digit"),
        pytest.param(b"{" + str(uuid.uuid4()).encode()[1:], id="a brace"),
    ],
)
def test_keys_that_are_not_canonical_uuids_are_not_ok(key: bytes | None) -> None:
    good = str(uuid.uuid4()).encode()
    _, _, ok = parse_keys([good, key, good])
    assert ok.tolist() == [True, False, True]


def test_an_empty_batch_parses() -> None:
    hi, lo, ok = parse_keys([])
    assert len(hi) == len(lo) == len(ok) == 0


def random_halves(count: int, seed: int) -> tuple[U64, U64]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2**64, count, dtype=np.uint64), rng.integers(0, 2**64, count, dtype=np.uint64)


def test_every_id_added_is_found_however_it_was_added() -> None:
    window = IdWindow(DAY)
    added = ids(20_000)
    for start in range(0, 20_000, 500):  # many batches, the first bucket's segments overflowing
        hi, lo, _ = parse_keys(added[start : start + 500])
        window.add(hi, lo, 1_000.0 + start)
    hi, lo, _ = parse_keys(added)
    assert window.contains(hi, lo).all(), "a filter may say maybe, never no, for an id it holds"
    assert len(window) == 20_000


def test_ids_of_a_uuid_v7_clock_are_spread_like_random_ones() -> None:
    """UUIDv7 starts with a millisecond clock: ids of one second share most high bits."""
    window = IdWindow(DAY)
    rng = np.random.default_rng(7)
    hi = (np.uint64(1_760_000_000_000) << np.uint64(16)) + rng.integers(0, 2**16, 200_000, dtype=np.uint64)
    lo = rng.integers(0, 2**64, 200_000, dtype=np.uint64)
    window.reserve(0, 100_000)
    window.add_at(hi[:100_000], lo[:100_000], np.zeros(100_000))
    assert window.contains(hi[:100_000], lo[:100_000]).all()
    assert window.contains(hi[100_000:], lo[100_000:]).mean() < 0.02


@pytest.mark.parametrize("count", [pytest.param(10_000, id="small bucket"), pytest.param(1_000_000, id="1M ids")])
def test_false_positives_stay_near_one_percent_at_under_two_bytes_an_id(count: int) -> None:
    window = IdWindow(DAY)
    hi, lo = random_halves(count, seed=1)
    window.reserve(0, count)  # as a rebuild does, from the store's count per bucket
    for start in range(0, count, 65_536):  # filled block by block
        window.add_at(hi[start : start + 65_536], lo[start : start + 65_536], np.zeros(len(hi[start : start + 65_536])))
    others_hi, others_lo = random_halves(100_000, seed=2)
    rate = float(window.contains(others_hi, others_lo).mean())
    assert 0.002 < rate < 0.015, rate
    assert window.nbytes / count <= 2.0 or count < 100_000, "small buckets have a floor of 4,096 ids"


def test_a_bucket_filling_past_its_estimate_keeps_its_rate_bounded() -> None:
    window = IdWindow(DAY)
    bucket_s = DAY / 8
    first_hi, first_lo = random_halves(50_000, seed=3)
    window.add(first_hi, first_lo, 0.0)
    second_hi, second_lo = random_halves(200_000, seed=4)  # four times the previous bucket
    for start in range(0, 200_000, 10_000):
        window.add(second_hi[start : start + 10_000], second_lo[start : start + 10_000], bucket_s + 1)
    assert window.contains(second_hi, second_lo).all()
    others_hi, others_lo = random_halves(100_000, seed=5)
    assert window.contains(others_hi, others_lo).mean() < 0.07  # two buckets, the second in 4 segments
    assert window.nbytes / 250_000 <= 2.2


def test_ids_are_kept_for_at_least_the_window_and_dropped_after_an_eighth_more() -> None:
    window = IdWindow(DAY)
    hi, lo, _ = parse_keys(ids(10))
    window.add(hi, lo, 10 * DAY)
    window.evict(11 * DAY - 1)
    assert window.contains(hi, lo).all(), "still inside the window"
    window.evict(11 * DAY + DAY / 8 + 1)
    assert not window.contains(hi, lo).any()
    assert len(window) == 0 and window.nbytes == 0


def test_expiry_drops_whole_buckets_and_keeps_the_younger_ones() -> None:
    window = IdWindow(DAY)
    old_hi, old_lo = random_halves(5_000, seed=6)
    young_hi, young_lo = random_halves(5_000, seed=7)
    window.add(old_hi, old_lo, 0.0)
    window.add(young_hi, young_lo, DAY / 2)
    window.evict(DAY + DAY / 8)
    assert window.contains(young_hi, young_lo).all()
    assert window.contains(old_hi, old_lo).mean() < 0.02, "the old bucket is gone; its ids are strangers now"
    assert len(window) == 5_000


def test_a_rebuilt_window_takes_each_id_with_its_own_time() -> None:
    window = IdWindow(DAY)
    hi, lo, _ = parse_keys(ids(3))
    window.add_at(hi, lo, np.array([0.0, DAY, 2 * DAY]))
    window.evict(DAY + DAY / 2)
    assert window.contains(hi[1:], lo[1:]).all()
    assert len(window) == 2


def test_a_first_bucket_filled_at_a_steady_rate_has_few_segments() -> None:
    """A fresh worker has no bucket to size the first one by: it sizes by the rate it sees."""
    window = IdWindow(DAY)
    hi, lo = random_halves(1_000_000, seed=8)
    for i, start in enumerate(range(0, 1_000_000, 1_000)):  # 1,000 ids a second, for 1,000 s
        window.add(hi[start : start + 1_000], lo[start : start + 1_000], float(i))
    others_hi, others_lo = random_halves(100_000, seed=9)
    assert window.contains(others_hi, others_lo).mean() < 0.05
    assert window.contains(hi, lo).all()
