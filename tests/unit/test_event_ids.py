"""Pooled event ids are canonical random UUIDs, unique, and new in a forked child."""

from __future__ import annotations

import os
import re
import threading
import uuid

from usagemeter.producers.ids import new_event_id

CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_ids_are_canonical_version_4_uuids() -> None:
    for _ in range(5000):
        event_id = new_event_id()
        assert CANONICAL.fullmatch(event_id), event_id
        parsed = uuid.UUID(event_id)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, event_id)


def test_every_random_bit_varies() -> None:
    """122 bits random: OR and AND over many ids show each free bit both set and clear."""
    ints = [uuid.UUID(new_event_id()).int for _ in range(4000)]
    any_set, all_set = 0, (1 << 128) - 1
    for value in ints:
        any_set |= value
        all_set &= value
    fixed = (0xF << 76) | (0x3 << 62)  # version and variant bits
    assert (any_set & ~all_set) == ((1 << 128) - 1) & ~fixed


def test_ids_are_unique_across_threads() -> None:
    seen: list[list[str]] = [[] for _ in range(4)]

    def take(into: list[str]) -> None:
        into.extend(new_event_id() for _ in range(5000))

    threads = [threading.Thread(target=take, args=(ids,)) for ids in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [event_id for ids in seen for event_id in ids]
    assert len(set(every)) == len(every) == 20_000


def test_a_forked_child_does_not_reuse_the_parents_pool() -> None:
    new_event_id()  # the pool now holds ids the child must not hand out
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, "\n".join(new_event_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split("\n"))
    os.waitpid(pid, 0)
    parent = {new_event_id() for _ in range(2000)}
    assert not child & parent
