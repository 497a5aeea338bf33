"""The price book's shape: its price columns and the time range its rows cover.

Apart from ``pricebook`` (which loads genai-prices) so that the query side can name the columns
without loading the price data.
"""

from __future__ import annotations

from datetime import UTC, datetime

PRICE_COLUMNS: tuple[str, ...] = (
    "input_mtok",
    "cache_read_mtok",
    "cache_write_mtok",
    "cache_write_1h_mtok",
    "output_mtok",
    "output_reasoning_mtok",
    "input_audio_mtok",
    "output_audio_mtok",
    "web_searches_kcount",
    "requests_kcount",
)
"""genai-prices price keys that have a column in ``price_cell_source``, in column order."""

BOOK_START = datetime(1970, 1, 1, tzinfo=UTC)
BOOK_END = datetime(2106, 1, 1, tzinfo=UTC)
