"""Every chosen budget's spend in its current period, in one query, from the 15-minute aggregates.

The budgets themselves are read in the query (``budget_versions``, the highest version of each), so the
query's size does not grow with their number: the caller passes only the bounds of each distinct period
kind (``spec_key``: period, zone, week start, rolling days), which are few. Which budgets are read:

    all      every budget (start-up, the periodic sweep, after a reprice)
    touched  the budgets whose scope a recent insert touched (``budget_activity`` since ``since``): a
             client's and its label budgets when the client was touched, a user budget when that user
             was, a provider or model budget when that provider or model was
    ids      the budgets named (a change, the pre-flight check)

Client, provider and model budgets read ``usage_15m_by_model``, user budgets ``usage_15m_by_user``, label
budgets ``usage_15m_by_label``: the tables reports read, so a budget and a report never disagree. A budget
with no usage in its period has no row (its spend is zero). ``recent_*`` is the spend since each period's
``recent_start``: the run rate behind projections and the pre-flight check's worst-case overshoot. Token
and request sums are unsigned and wrap around on reprice's negative rows, which makes them right (modulo
2^64), as no true total is negative.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal

from clickhouse_connect.driver.client import Client

from usagemeter.budgets.model import Unit
from usagemeter.budgets.periods import Window

Selection = Literal["all", "touched", "ids"]

# The query is assembled from the fragments below, one string per mode, at import: no value is ever
# formatted into it. Its cost is mostly the engine's analysis and planning, not the reading (a few
# thousand aggregate rows), so it names each table once where it can: the budgets are joined once to the
# three aggregate tables' rows unioned (``source`` says which table a row and a budget belong to; ``k1``,
# ``k2`` are the user, or the label's key and value), and no scalar subquery is used (the engine runs
# one again in each UNION branch, ~10 ms each on chDB).
_BOUNDS: Final = """
WITH
    bounds AS (
        SELECT b.1 AS spec_key, b.2 AS period_start, b.3 AS period_end, b.4 AS recent_start
        FROM (SELECT arrayJoin(arrayZip({spec_keys:Array(String)}, {starts:Array(DateTime('UTC'))},
                                        {ends:Array(DateTime('UTC'))}, {recents:Array(DateTime('UTC'))})) AS b)
    ),"""

_TOUCHED: Final = """
    touched AS (
        SELECT client_id, user_id, provider, model
        FROM budget_activity
        WHERE ingested >= {since:DateTime64(3, 'UTC')}
    ),"""

_LATEST: Final = """
    latest AS (
        SELECT budget_id, max(version) AS latest_version, argMax(deleted, version) AS gone,
               argMax(scope, version) AS kind, any(client_id) AS client, argMax(user_id, version) AS user,
               argMax(provider, version) AS provider_id, argMax(model, version) AS model_id,
               argMax(label_key, version) AS key, argMax(label_value, version) AS value,
               argMax(spec_key, version) AS spec
        FROM budget_versions"""

_CHOSEN: Final = """
        GROUP BY budget_id
    ),
    chosen AS (
        SELECT l.budget_id AS budget_id, l.latest_version AS version,
               multiIf(l.kind = 'user', 'user', l.kind = 'label', 'label', 'model') AS source,
               l.client AS client_id, multiIf(l.kind = 'user', l.user, l.kind = 'label', l.key, '') AS k1,
               if(l.kind = 'label', l.value, '') AS k2, l.provider_id AS provider, l.model_id AS model,
               b.period_start AS period_start, b.period_end AS period_end, b.recent_start AS recent_start
        FROM latest AS l
        INNER JOIN bounds AS b ON l.spec = b.spec_key
        WHERE NOT l.gone"""

# touched: a client's and its label budgets when the client was touched (``latest`` read only those
# clients), a user budget when that user was, a provider or model budget when that provider or model was.
_CHOSEN_TOUCHED: Final = """
          AND (l.kind IN ('client', 'label')
               OR (l.client, multiIf(l.kind = 'user', 'user', l.model_id = '', 'provider', 'model'),
                   multiIf(l.kind = 'user', l.user, l.model_id = '', l.provider_id, l.model_id))
                  IN (SELECT client_id, d.1, d.2
                      FROM touched
                      ARRAY JOIN [('user', user_id), ('provider', toString(provider)),
                                  ('model', toString(model))] AS d))"""

_USAGE_BRANCH: Final = (
    """
    SELECT 'model' AS source, client_id, bucket, '' AS k1, '' AS k2, provider, model,
           cost_total AS usd, input_tokens + output_tokens AS tokens, requests
    FROM usage_15m_by_model""",
    """
    SELECT 'user' AS source, client_id, bucket, user_id AS k1, '' AS k2, provider, model,
           cost_total AS usd, input_tokens + output_tokens AS tokens, requests
    FROM usage_15m_by_user""",
    """
    SELECT 'label' AS source, client_id, bucket, label_key AS k1, label_value AS k2, provider, model,
           cost_total AS usd, input_tokens + output_tokens AS tokens, requests
    FROM usage_15m_by_label""",
)

_SPEND: Final = """
    )
SELECT c.budget_id, c.version, sum(a.usd), sum(a.tokens), sum(a.requests),
       sumIf(a.usd, a.bucket >= c.recent_start), sumIf(a.tokens, a.bucket >= c.recent_start),
       sumIf(a.requests, a.bucket >= c.recent_start)
FROM ("""

_JOINED: Final = """
) AS a
INNER JOIN chosen AS c ON a.source = c.source AND a.client_id = c.client_id AND a.k1 = c.k1 AND a.k2 = c.k2
WHERE a.bucket >= c.period_start AND a.bucket < c.period_end
  AND (c.provider = '' OR a.provider = c.provider) AND (c.model = '' OR a.model = c.model)
GROUP BY c.budget_id, c.version
"""

_SINCE_START: Final = " AND bucket >= {min_start:DateTime('UTC')}"


def _usage(where: str) -> str:
    """The three aggregate tables' rows from the earliest period start on, each narrowed by ``where``."""
    return "\n    UNION ALL".join(branch + "\n    WHERE " + where + _SINCE_START for branch in _USAGE_BRANCH)


_TOUCHED_CLIENTS: Final = "client_id IN (SELECT client_id FROM touched)"
_NAMED_CLIENTS: Final = "client_id IN {clients:Array(String)}"

_SQL: Final[dict[Selection, str]] = {
    "all": _BOUNDS + _LATEST + _CHOSEN + _SPEND + _usage("1") + _JOINED,
    "touched": _BOUNDS + _TOUCHED + _LATEST + "\n        WHERE " + _TOUCHED_CLIENTS + _CHOSEN + _CHOSEN_TOUCHED
    + _SPEND + _usage(_TOUCHED_CLIENTS) + _JOINED,
    "ids": _BOUNDS + _LATEST + "\n        WHERE " + _NAMED_CLIENTS + " AND has({ids:Array(String)}, budget_id)"
    + _CHOSEN + _SPEND + _usage(_NAMED_CLIENTS) + _JOINED,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Spend:
    """Usage of one budget's scope in its period: cost (USD), tokens (input + output), requests."""

    usd: Decimal = Decimal(0)
    tokens: int = 0
    requests: int = 0
    recent_usd: Decimal = Decimal(0)
    recent_tokens: int = 0
    recent_requests: int = 0

    def of(self, unit: Unit) -> Decimal:
        return self.usd if unit == "usd" else Decimal(self.tokens if unit == "tokens" else self.requests)

    def recent_of(self, unit: Unit) -> Decimal:
        if unit == "usd":
            return self.recent_usd
        return Decimal(self.recent_tokens if unit == "tokens" else self.recent_requests)


NO_SPEND: Final = Spend()


def read_spend(
    client: Client,
    windows: Mapping[str, tuple[Window, datetime]],
    *,
    mode: Selection,
    since: datetime | None = None,
    ids: Collection[str] = (),
    clients: Collection[str] = (),
) -> dict[tuple[str, int], Spend]:
    """Spend by (budget id, version); ``windows`` maps each spec key to its period and recent start;
    ``ids`` mode reads the budgets named in ``ids`` of the clients in ``clients`` (the clients narrow the
    read to the primary key's range)."""
    if not windows:
        return {}
    keys = list(windows)
    starts = [windows[k][0].start_utc for k in keys]
    parameters = {
        "spec_keys": keys,
        "starts": starts,
        "ends": [windows[k][0].end_utc for k in keys],
        "recents": [windows[k][1] for k in keys],
        "since": since or min(starts),
        "ids": list(ids),
        "clients": list(clients),
        "min_start": min(starts),
    }
    rows = client.query(_SQL[mode], parameters=parameters).result_rows
    return {
        (str(row[0]), int(row[1])): Spend(
            Decimal(row[2]), int(row[3]), int(row[4]), Decimal(row[5]), int(row[6]), int(row[7])
        )
        for row in rows
    }
