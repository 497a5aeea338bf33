"""``IdWindow`` and ``parse_keys``: the cross-batch dedup memory must never forget early or confuse two ids."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from usagemeter.consumers.id_window import IdWindow, parse_keys

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


def test_ids_added_are_found_and_others_are_not() -> None:
    window = IdWindow(DAY)
    added = ids(5_000)
    for start in range(0, 5_000, 500):  # many runs, merged geometrically
        hi, lo, _ = parse_keys(added[start : start + 500])
        window.add(hi, lo, 1_000.0 + start)
    assert len(window) == 5_000
    probe = added[::7] + ids(1_000)
    hi, lo, _ = parse_keys(probe)
    assert window.contains(hi, lo).tolist() == [True] * len(added[::7]) + [False] * 1_000


def test_ids_sharing_their_low_half_are_told_apart() -> None:
    window = IdWindow(DAY)
    lo = np.array([7, 7, 7, 9], dtype=np.uint64)
    window.add(np.array([1, 2, 3, 1], dtype=np.uint64), lo, 0.0)
    found = window.contains(np.array([3, 4, 1, 2], dtype=np.uint64), np.array([7, 7, 9, 9], dtype=np.uint64))
    assert found.tolist() == [True, False, True, False]


def test_ids_are_kept_for_at_least_the_window_and_dropped_after_an_eighth_more() -> None:
    window = IdWindow(DAY)
    hi, lo, _ = parse_keys(ids(10))
    window.add(hi, lo, 10 * DAY)
    window.evict(11 * DAY - 1)
    assert window.contains(hi, lo).all(), "still inside the window"
    window.evict(11 * DAY + DAY / 8 + 1)
    assert not window.contains(hi, lo).any()
    assert len(window) == 0


def test_a_rebuilt_window_takes_each_id_with_its_own_time() -> None:
    window = IdWindow(DAY)
    hi, lo, _ = parse_keys(ids(3))
    window.add_at(hi, lo, np.array([0.0, DAY, 2 * DAY]))
    window.evict(DAY + DAY / 2)
    assert window.contains(hi, lo).tolist() == [False, True, True]
