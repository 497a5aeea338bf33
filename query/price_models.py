"""What the pricing routes of the API take and give: a loaded book, a reprice request and its result.

Here rather than in ``api/`` so that the HTTP client (``remote_prices.py``) and the CLI share them without
loading FastAPI, and rather than in ``pricing/`` so that the computation keeps plain data and the wire
shape is decided at the edge.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class BookLoaded(BaseModel):
    book_version: int
    price_rows: int
    alias_rows: int


class RepriceRequest(BaseModel):
    since: datetime
    until: datetime | None = None
    client_id: str = ""
    model: str = Field(default="", description="A model id as usage_events stores it, or a name as events give it.")
    dry_run: bool = False
    reason: str = "reprice"


class RepriceResult(BaseModel):
    """``pricing.reprice.Repriced`` on the wire (read from its attributes)."""

    model_config = ConfigDict(from_attributes=True)

    run_id: uuid.UUID
    dry_run: bool
    events_repriced: int
    unknown_now_priced: int
    cost_delta: Decimal
    cost_delta_by_model: dict[str, Decimal]
    """Net change of cost_total per (new) ``provider/model``; an event that changed model also takes its
    old cost away from the old one."""
    chunks_written: int
