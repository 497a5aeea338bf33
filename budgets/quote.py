"""``quote()``: what one call would cost, priced by the engine functions that price ingested events.

The names go through ``usagemeter_resolve_name`` (0008) and the price through ``usagemeter_cost`` (0009),
the staging view's own functions, with the client's overrides and contracts: a quote and the event it
becomes cost the same, to the Decimal. Token counts follow the event contract (``input_tokens`` counts
every input token, cached ones included; ``output_tokens`` every output token, reasoning included).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from clickhouse_connect.driver.client import Client
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from usagemeter.query.models import CostBreakdown
from usagemeter.schemas.clock import SYSTEM_CLOCK, utc_datetime

_SQL: Final = """
SELECT provider_id, model_id,
       usagemeter_cost({client_id:String}, provider_id, model_id, {service_tier:String}, {at:DateTime64(6, 'UTC')},
                       {input_tokens:UInt64}, {output_tokens:UInt64}, {cache_read_tokens:UInt64},
                       {cache_write_tokens:UInt64}, {cache_write_1h_tokens:UInt64}, {reasoning_tokens:UInt64},
                       {input_audio_tokens:UInt64}, {output_audio_tokens:UInt64}, {web_searches:UInt32},
                       {requests:UInt32}) AS c
FROM
(
    SELECT if(r[2] = '', lower({provider:String}), r[1]) AS provider_id,
           if(r[2] = '', lower({model:String}), r[2]) AS model_id
    FROM (SELECT usagemeter_resolve_name({provider:String}, {model:String}) AS r)
)
"""

_COUNT = Field(default=0, ge=0, le=1_000_000_000)


class Usage(BaseModel):
    """A call's usage, as an estimate before it is made or as reported after."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1, max_length=256)
    provider: str = Field(default="", max_length=256)
    service_tier: str = Field(default="", max_length=64)
    input_tokens: int = _COUNT
    output_tokens: int = _COUNT
    cache_read_tokens: int = _COUNT
    cache_write_tokens: int = _COUNT
    cache_write_1h_tokens: int = _COUNT
    reasoning_tokens: int = _COUNT
    input_audio_tokens: int = _COUNT
    output_audio_tokens: int = _COUNT
    web_searches: int = _COUNT
    requests: int = Field(default=1, ge=0, le=1_000_000_000)

    @model_validator(mode="after")
    def _parts_fit(self) -> Usage:
        if self.cache_read_tokens + self.cache_write_tokens > self.input_tokens:
            raise ValueError("cache_read_tokens + cache_write_tokens exceed input_tokens (which includes them)")
        if self.reasoning_tokens + self.output_audio_tokens > self.output_tokens:
            raise ValueError("reasoning_tokens + output_audio_tokens exceed output_tokens (which includes them)")
        if self.input_audio_tokens > self.input_tokens or self.cache_write_1h_tokens > self.cache_write_tokens:
            raise ValueError("a part exceeds the count it is part of")
        return self


class Quote(BaseModel):
    model_config = ConfigDict(frozen=True)

    client_id: str
    provider: str
    """genai-prices' provider id, or the name given lower-cased when it resolves to nothing."""
    model: str
    at: AwareDatetime
    priced: bool
    """False when the price book has no price for the model (the cost is then zero, as the event's would be)."""
    price_status: str
    cost_source: str
    cost: CostBreakdown


def quote(client: Client, usage: Usage, *, client_id: str = "", at: datetime | None = None) -> Quote:
    """The cost of ``usage`` for ``client_id`` (whose overrides and contract apply) at ``at`` (default: now)."""
    moment = at if at is not None else utc_datetime(SYSTEM_CLOCK.now_us())
    parameters = {**usage.model_dump(), "client_id": client_id, "at": moment}
    provider, model, cost = client.query(_SQL, parameters=parameters).result_rows[0]
    source, status, *amounts = cost.values() if isinstance(cost, dict) else cost  # a named Tuple may come as a dict
    components = (
        "input",
        "cache_read",
        "cache_write",
        "output",
        "reasoning",
        "audio",
        "web_search",
        "request",
        "total",
    )
    return Quote(
        client_id=client_id,
        provider=str(provider),
        model=str(model),
        at=moment,
        priced=status != "unknown_model",
        price_status=str(status),
        cost_source=str(source),
        cost=CostBreakdown(**dict(zip(components, amounts, strict=True))),
    )
