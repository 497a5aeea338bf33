"""The on-disk spool: events the broker could not take yet, kept until the broker acknowledges them.

A spool is one directory (one per topic) of append-only segment files named so that sorting by name
is creation order: ``<unix time ns>-<pid>-<n>.seg``. A process holds an exclusive ``flock`` on the
segment it appends to; a replayer claims a segment with the same lock taken without waiting. So the
processes of one service can share a directory, and the segments a crashed process leaves behind are
unlocked and replayed by the next process that starts.

Segment format::

    b"UMSPOOL1"                          magic, once at the start of the file
    record*                              each:
        crc32    uint32 big-endian       CRC-32 of the two lengths (8 bytes), the key and the value
        key_len  uint32 big-endian
        val_len  uint32 big-endian
        key, value                       the Kafka message key (event_id) and value, as produced

A record cut short or failing its CRC ends the readable part of a segment: that is what a crash in
the middle of a write leaves (a torn tail). Reading stops there and counts it in ``Spool.corrupt``; the
records before it are replayed. A failed write (disk full) is truncated away at once.

Durability (the fsync policy): each batch is one ``write()``, so a crash of the process loses nothing
that reached the spool (the kernel has it). Segments are fsync'ed at most once per
``fsync_interval_s`` (1 s by default), when sealed and when the spool is closed, so a power loss or a
kernel crash loses at most the last interval's spooled events and may leave a torn tail (see above).

Deletion: a ``Claim`` deletes its segment only when every record in it was acknowledged; one failure
and the segment is kept whole, to be claimed again. A crash during replay therefore re-sends records
(duplicates: the worker deduplicates by event_id) but never loses one.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import struct
import time
import zlib
from collections.abc import Iterable
from pathlib import Path

from usagemeter.schemas.clock import SYSTEM_CLOCK, Clock

__all__ = ["Claim", "Record", "Spool"]

Record = tuple[bytes, bytes]
"""A Kafka message as (key, value)."""

MAGIC = b"UMSPOOL1"
_HEADER = struct.Struct(">III")
_LENGTHS = struct.Struct(">II")
_SUFFIX = ".seg"
_PARTIAL = ".seg.tmp"
_sequence = itertools.count()


def encode_record(key: bytes, value: bytes) -> bytes:
    lengths = _LENGTHS.pack(len(key), len(value))
    crc = zlib.crc32(value, zlib.crc32(key, zlib.crc32(lengths)))
    return struct.pack(">I", crc) + lengths + key + value


def decode_records(data: bytes) -> tuple[list[Record], bool]:
    """The records of a segment's bytes, and whether a torn or corrupt part ended them."""
    if not data:
        return [], False
    if not data.startswith(MAGIC):
        return [], True
    records: list[Record] = []
    pos, end = len(MAGIC), len(data)
    while pos < end:
        if pos + _HEADER.size > end:
            return records, True
        crc, key_len, value_len = _HEADER.unpack_from(data, pos)
        body = pos + _HEADER.size
        stop = body + key_len + value_len
        if stop > end:
            return records, True
        key, value = data[body : body + key_len], data[body + key_len : stop]
        if zlib.crc32(value, zlib.crc32(key, zlib.crc32(data[pos + 4 : body]))) != crc:
            return records, True
        records.append((key, value))
        pos = stop
    return records, False


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Writer:
    """The segment this process appends to, locked while open."""

    __slots__ = ("dirty", "fd", "path", "size")

    def __init__(self, directory: Path) -> None:
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(_sequence):06d}"
        partial = directory / (name + _PARTIAL)
        self.path = directory / (name + _SUFFIX)
        self.fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)  # a new file nobody else knows: never waits
        self.size = 0
        self.write(MAGIC)
        os.rename(partial, self.path)  # visible to replayers only with its magic and its lock
        _fsync_dir(directory)
        self.dirty = True

    def write(self, data: bytes) -> None:
        """Appends all of ``data`` or, on an error, nothing (a partial write is cut off again)."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError:
            os.ftruncate(self.fd, self.size)
            raise
        self.size += len(data)
        self.dirty = True

    def sync(self) -> None:
        if self.dirty:
            os.fsync(self.fd)
            self.dirty = False

    def close(self) -> None:
        self.sync()
        os.close(self.fd)


class Spool:
    """A directory of segments with a cap on its total size. Not thread-safe: one thread uses it.

    ``append`` refuses what would take the directory past ``max_bytes``; the caller counts those
    events as dropped. ``claim`` hands out the oldest segment nobody holds, for replay.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        max_bytes: int = 1 << 30,
        segment_max_bytes: int = 8 << 20,
        fsync_interval_s: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if max_bytes <= 0 or segment_max_bytes <= 0:
            raise ValueError(f"spool sizes must be positive (max_bytes={max_bytes}, segment={segment_max_bytes})")
        self.directory = Path(directory).absolute()
        self.directory.mkdir(parents=True, exist_ok=True)
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise PermissionError(f"the spool directory {self.directory} is not writable")
        self.max_bytes = max_bytes
        self.segment_max_bytes = segment_max_bytes
        self.fsync_interval_s = fsync_interval_s
        self.corrupt = 0
        """Torn or corrupt segment tails found while reading (a crash mid-write); their events are lost."""
        self._clock = clock
        self._last_sync = clock.monotonic()
        self._writer: _Writer | None = None
        self._remove_abandoned_partials()
        self._bytes = self._scan_bytes()

    @property
    def size_bytes(self) -> int:
        """Bytes in the directory's segments, as of the last scan plus what this process did since."""
        return self._bytes

    def segments(self) -> list[Path]:
        """Segment files, oldest first."""
        return sorted(self.directory.glob("*" + _SUFFIX))

    def append(self, records: Iterable[Record]) -> int:
        """Writes records in order until the cap; returns how many were stored (the rest were not)."""
        room = self.max_bytes - self._bytes
        parts: list[bytes] = []
        for key, value in records:
            blob = encode_record(key, value)
            if len(blob) > room:
                break
            room -= len(blob)
            parts.append(blob)
        if not parts:
            return 0
        data = b"".join(parts)
        writer = self._writable()
        try:
            writer.write(data)
        except OSError:
            self._seal()
            raise
        self._bytes += len(data)
        return len(parts)

    def maybe_sync(self) -> None:
        """fsyncs the open segment when the last fsync is ``fsync_interval_s`` old."""
        writer = self._writer
        if writer is not None and writer.dirty and self._clock.monotonic() - self._last_sync >= self.fsync_interval_s:
            self.sync()

    def sync(self) -> None:
        if self._writer is not None:
            self._writer.sync()
        self._last_sync = self._clock.monotonic()

    def claim(self) -> Claim | None:
        """The oldest segment no other writer or replayer holds, read and locked; None when none is.

        Seals this process's open segment first when it is the only one left, so it can be replayed.
        Empty segments (or ones with nothing readable) are deleted on the way.
        """
        self._bytes = self._scan_bytes()
        for sealing in (False, True):
            if sealing:
                if self._writer is None or self._writer.size <= len(MAGIC):
                    return None
                self._seal()
            for path in self.segments():
                if self._writer is not None and path == self._writer.path:
                    continue
                claim = self._claim(path)
                if claim is not None:
                    return claim
        return None

    def close(self) -> None:
        """fsyncs and unlocks the open segment (a later process may replay it)."""
        self._seal()

    def _claim(self, path: Path) -> Claim | None:
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None  # replayed and deleted by someone else since the listing
        if not _try_lock(fd) or os.fstat(fd).st_nlink == 0:
            os.close(fd)
            return None
        with os.fdopen(os.dup(fd), "rb") as reader:
            data = reader.read()
        records, torn = decode_records(data)
        if torn:
            self.corrupt += 1
        claim = Claim(self, path, fd, records, len(data))
        if not records:
            claim._finish()
            return None
        return claim

    def _writable(self) -> _Writer:
        if self._writer is not None and self._writer.size >= self.segment_max_bytes:
            self._seal()
        if self._writer is None:
            self._writer = _Writer(self.directory)
            self._bytes += len(MAGIC)
        return self._writer

    def _seal(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()
            self._last_sync = self._clock.monotonic()

    def _released(self, size: int) -> None:
        self._bytes = max(0, self._bytes - size)

    def _scan_bytes(self) -> int:
        total = 0
        for path in self.segments():
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
        return total

    def _remove_abandoned_partials(self) -> None:
        """A segment file a crash left before it got its name: at most the magic, nothing to keep."""
        for path in self.directory.glob("*" + _PARTIAL):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                if _try_lock(fd):
                    path.unlink(missing_ok=True)
            finally:
                os.close(fd)


class Claim:
    """A segment being replayed. Report each sent record's outcome with ``ack``.

    The segment is deleted once every record was sent and acknowledged; after a failure no more should
    be sent (``failed``), and once the sent ones are all answered it is unlocked and kept whole.
    """

    __slots__ = ("_fd", "_size", "_spool", "acked", "failed", "finished", "path", "records", "sent")

    def __init__(self, spool: Spool, path: Path, fd: int, records: list[Record], size: int) -> None:
        self.path = path
        self.records = records
        self.sent = 0
        """How many of ``records`` (from the first) the replayer has produced."""
        self.acked = 0
        self.failed = 0
        self.finished = False
        self._spool = spool
        self._fd = fd
        self._size = size

    def next_record(self) -> Record | None:
        """The next record to send, or None when all were sent or one failed (stop sending)."""
        if self.failed or self.finished or self.sent >= len(self.records):
            return None
        return self.records[self.sent]

    def ack(self, ok: bool) -> None:
        """One sent record's outcome; the last one deletes the segment, or keeps it after a failure."""
        self.acked += 1
        if not ok:
            self.failed += 1
        if self.acked >= self.sent and (self.failed or self.sent >= len(self.records)):
            self._finish()

    def release(self) -> None:
        """Gives the segment up without deleting it (at close, before every record was sent)."""
        if not self.finished:
            self.finished = True
            os.close(self._fd)

    def _finish(self) -> None:
        if self.finished:
            return
        if not self.failed:
            self.path.unlink(missing_ok=True)
            self._spool._released(self._size)
        self.release()
