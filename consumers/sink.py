"""Inserts Avro blocks into the staging table, telling bad data apart from an unavailable store."""

from __future__ import annotations

import re
from typing import Final

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, DatabaseError

from usagemeter.consumers.errors import BlockRejected, StoreUnavailable

STAGING_TABLE: Final = "usage_staging"
# ClickHouse error codes that mean "this data", not "this server": a retry of the same bytes fails again.
_DATA_ERROR_CODES: Final = frozenset({6, 27, 32, 33, 38, 41, 53, 69, 70, 72, 117, 128, 131, 395, 1001})
_CODE = re.compile(r"Code: (\d+)")
_INSERT_SETTINGS: Final = {
    # Older writers lack newer fields: ClickHouse fills the staging table's defaults.
    "input_format_avro_allow_missing_fields": 1,
    # The worker batches itself; an acknowledged insert must be written, and tokens behave as documented.
    "async_insert": 0,
    # A retried block must be dropped by every table the views write to, not only the first.
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    # One block per insert, so that a rejected insert writes nothing at all.
    "max_insert_block_size": 10_000_000,
    "min_insert_block_size_rows": 0,
    "min_insert_block_size_bytes": 0,
}


class ClickHouseSink:
    def __init__(self, client: Client) -> None:
        self._client = client

    def insert(self, avro_container: bytes, token: str) -> None:
        settings = {**_INSERT_SETTINGS, "insert_deduplication_token": token}
        try:
            self._client.raw_insert(STAGING_TABLE, None, avro_container, fmt="Avro", settings=settings)
        except DatabaseError as exc:
            if _is_data_error(str(exc)):
                raise BlockRejected(_first_line(str(exc))) from exc
            raise StoreUnavailable(_first_line(str(exc))) from exc
        except (ClickHouseError, OSError) as exc:
            raise StoreUnavailable(_first_line(str(exc))) from exc


def _is_data_error(message: str) -> bool:
    match = _CODE.search(message)
    return match is not None and int(match.group(1)) in _DATA_ERROR_CODES


def _first_line(message: str) -> str:
    """The error without the expression dump ClickHouse appends after ': while executing'."""
    first = message.strip().splitlines()[0] if message.strip() else "no message"
    return first.split(": while ", 1)[0][:500]
