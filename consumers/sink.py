"""Inserts Avro blocks into the staging table, telling bad data apart from an unavailable store."""

from __future__ import annotations

import queue
import re
from collections.abc import Sequence
from typing import Final

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, DatabaseError, OperationalError, ProgrammingError

from usagemeter.consumers.avro_block import container
from usagemeter.schemas import WriterSchema
from usagemeter.schemas.errors import BlockRejected, StoreUnavailable

STAGING_TABLE: Final = "usage_staging"
# ClickHouse error codes that mean "this server, now", not "this data": the same bytes may pass later.
# Any other error the server answers with is taken as being about the block, which the writer then
# triages; if triage finds nothing wrong and the engine still refuses everything, the writer treats it
# as the store's fault after all (``BatchWriter``), so an unlisted code costs a triage, never an event.
_STORE_ERROR_CODES: Final = frozenset(
    {
        3,  # UNEXPECTED_END_OF_FILE (connection cut)
        60,  # UNKNOWN_TABLE (a table detached or being migrated)
        81,  # UNKNOWN_DATABASE
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        243,  # NOT_ENOUGH_SPACE
        252,  # TOO_MANY_PARTS
        279,  # ALL_CONNECTION_TRIES_FAILED
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        439,  # CANNOT_SCHEDULE_TASK
        516,  # AUTHENTICATION_FAILED
        999,  # KEEPER_EXCEPTION
        1000,  # POCO_EXCEPTION
    }
)
_CODE = re.compile(r"Code: (\d+)")
INSERT_SETTINGS: Final = {
    # Older writers lack newer fields: ClickHouse fills the staging table's defaults.
    "input_format_avro_allow_missing_fields": 1,
    # The worker batches itself; an acknowledged insert must be written, and tokens behave as documented.
    "async_insert": 0,
    # A retried block must be dropped by every table the views write to, not only the first.
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    # The eight views on usage_events run side by side instead of one after the other: 0.64x the insert time of
    # a 100,000-event block (benchmarks/engine_path.py, BENCHMARKS.md); each still dedups by its own block id.
    "parallel_view_processing": 1,
    # One block per insert, so that a rejected insert writes nothing at all.
    "max_insert_block_size": 10_000_000,
    "min_insert_block_size_rows": 0,
    "min_insert_block_size_bytes": 0,
}


class ClickHouseSink:
    """Inserts on ``client`` and on the ``extra`` sessions, one insert per session at a time, so that the
    writer's threads can insert as many blocks side by side; the extra sessions are this sink's to close."""

    def __init__(self, client: Client, extra: Sequence[Client] = ()) -> None:
        self._extra = list(extra)
        self._free: queue.SimpleQueue[Client] = queue.SimpleQueue()
        for session in (client, *self._extra):
            self._free.put(session)

    @property
    def sessions(self) -> int:
        return 1 + len(self._extra)

    def insert(self, schema: WriterSchema, bodies: list[bytes], token: str) -> None:
        """One block of ``bodies``, deduplicated by ``token`` in every table the views write to."""
        client = self._free.get()
        try:
            self._insert(client, schema, bodies, token)
        finally:
            self._free.put(client)

    def close(self) -> None:
        for session in self._extra:
            session.close()

    @staticmethod
    def _insert(client: Client, schema: WriterSchema, bodies: list[bytes], token: str) -> None:
        settings = {**INSERT_SETTINGS, "insert_deduplication_token": token}
        try:
            client.raw_insert(STAGING_TABLE, None, container(schema, bodies, token), fmt="Avro", settings=settings)
        except ProgrammingError:  # a closed client or a misuse: a bug, which must stop the worker
            raise
        except OperationalError as exc:  # the connection, not the data
            raise StoreUnavailable(_first_line(str(exc))) from exc
        except DatabaseError as exc:
            if _is_data_error(str(exc)):
                raise BlockRejected(_first_line(str(exc))) from exc
            raise StoreUnavailable(_first_line(str(exc))) from exc
        except (ClickHouseError, OSError) as exc:
            raise StoreUnavailable(_first_line(str(exc))) from exc


def _is_data_error(message: str) -> bool:
    """A server error with a code not listed as the store's, or an error with no code at all: the chDB
    client raises one without ``Code: N`` when the engine's message quotes bytes of the block that are not
    UTF-8, which only data does. Should it be the store after all, triage finds no bad event and the
    writer's bisection says so (``BatchWriter``), so a wrong guess costs a triage, never an event."""
    match = _CODE.search(message)
    return match is None or int(match.group(1)) not in _STORE_ERROR_CODES


def _first_line(message: str) -> str:
    """The error without the expression dump ClickHouse appends after ': while executing'."""
    first = message.strip().splitlines()[0] if message.strip() else "no message"
    return first.split(": while ", 1)[0][:500]
