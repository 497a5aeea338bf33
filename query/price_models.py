"""What the pricing routes of the API take and give: a loaded book, a reprice request and its result.

Here rather than in ``api/`` so that the HTTP client (``remote_prices.py``) and the CLI share them without
loading FastAPI; ``pricing.reprice`` computes with plain data (``Selection``, ``Repriced``) and these
decide the wire shape.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, RootModel

from usagemeter.pricing.reprice import Repriced


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


class RepriceResult(RootModel[Repriced]):
    """``pricing.reprice.Repriced`` on the wire, its fields at the top level of the JSON object."""
