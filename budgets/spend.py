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

# Spend of one scope kind's chosen budgets: the same columns from each aggregate table.
_MEASURES: Final = """
SELECT c.budget_id, c.version,
       sum(a.cost_total), sum(a.input_tokens + a.output_tokens), sum(a.requests),
       sumIf(a.cost_total, a.bucket >= c.recent_start),
       sumIf(a.input_tokens + a.output_tokens, a.bucket >= c.recent_start),
       sumIf(a.requests, a.bucket >= c.recent_start)
"""

_SQL: Final = (
    """
WITH
    bounds AS (
        SELECT b.1 AS spec_key, b.2 AS period_start, b.3 AS period_end, b.4 AS recent_start
        FROM (SELECT arrayJoin(arrayZip({spec_keys:Array(String)}, {starts:Array(DateTime('UTC'))},
                                        {ends:Array(DateTime('UTC'))}, {recents:Array(DateTime('UTC'))})) AS b)
    ),
    touched AS (
        SELECT client_id, user_id, provider, model
        FROM budget_activity
        WHERE {mode:String} = 'touched' AND ingested >= {since:DateTime64(3, 'UTC')}
    ),
    latest AS (
        SELECT budget_id, max(version) AS latest_version, argMax(deleted, version) AS gone,
               argMax(scope, version) AS kind, any(client_id) AS client, argMax(user_id, version) AS user,
               argMax(provider, version) AS provider_id, argMax(model, version) AS model_id,
               argMax(label_key, version) AS key, argMax(label_value, version) AS value,
               argMax(spec_key, version) AS spec
        FROM budget_versions
        WHERE {mode:String} = 'all'
           OR ({mode:String} = 'ids' AND client_id IN {clients:Array(String)} AND has({ids:Array(String)}, budget_id))
           OR ({mode:String} = 'touched' AND client_id IN (SELECT client_id FROM touched))
        GROUP BY budget_id
    ),
    picked AS (
        SELECT l.budget_id AS budget_id, l.latest_version AS version, l.kind AS scope, l.client AS client_id,
               l.user AS user_id, l.provider_id AS provider, l.model_id AS model, l.key AS label_key,
               l.value AS label_value, b.period_start AS period_start, b.period_end AS period_end,
               b.recent_start AS recent_start
        FROM latest AS l
        INNER JOIN bounds AS b ON l.spec = b.spec_key
        WHERE NOT l.gone AND (
            {mode:String} != 'touched'
            OR l.kind IN ('client', 'label')
            OR (l.kind = 'user' AND (l.client, l.user) IN (SELECT client_id, user_id FROM touched))
            OR (l.kind = 'model' AND l.model_id = ''
                AND (l.client, l.provider_id) IN (SELECT client_id, provider FROM touched))
            OR (l.kind = 'model' AND l.model_id != ''
                AND (l.client, l.model_id) IN (SELECT client_id, model FROM touched)))
    ),
    -- picked, read once: the engine inlines a CTE at each of its six uses, but runs a scalar subquery
    -- once per query, so the budgets are chosen once and each use unrolls the array.
    chosen AS (
        SELECT c.1 AS budget_id, c.2 AS version, c.3 AS scope, c.4 AS client_id, c.5 AS user_id, c.6 AS provider,
               c.7 AS model, c.8 AS label_key, c.9 AS label_value, c.10 AS period_start, c.11 AS period_end,
               c.12 AS recent_start
        FROM (SELECT arrayJoin((SELECT groupArray((budget_id, version, scope, client_id, user_id, provider, model,
                                                   label_key, label_value, period_start, period_end, recent_start))
                                FROM picked)) AS c)
    )
"""
    + _MEASURES
    + """FROM usage_15m_by_model AS a
INNER JOIN (SELECT * FROM chosen WHERE scope IN ('client', 'model')) AS c ON a.client_id = c.client_id
WHERE a.client_id IN (SELECT client_id FROM chosen WHERE scope IN ('client', 'model'))
  AND a.bucket >= {min_start:DateTime('UTC')}
  AND a.bucket >= c.period_start AND a.bucket < c.period_end
  AND (c.provider = '' OR a.provider = c.provider) AND (c.model = '' OR a.model = c.model)
GROUP BY c.budget_id, c.version
UNION ALL
"""
    + _MEASURES
    + """FROM usage_15m_by_user AS a
INNER JOIN (SELECT * FROM chosen WHERE scope = 'user') AS c ON a.client_id = c.client_id AND a.user_id = c.user_id
WHERE (a.client_id, a.user_id) IN (SELECT client_id, user_id FROM chosen WHERE scope = 'user')
  AND a.bucket >= {min_start:DateTime('UTC')}
  AND a.bucket >= c.period_start AND a.bucket < c.period_end
GROUP BY c.budget_id, c.version
UNION ALL
"""
    + _MEASURES
    + """FROM usage_15m_by_label AS a
INNER JOIN (SELECT * FROM chosen WHERE scope = 'label') AS c
    ON a.client_id = c.client_id AND a.label_key = c.label_key AND a.label_value = c.label_value
WHERE (a.client_id, a.label_key, a.label_value) IN
      (SELECT client_id, label_key, label_value FROM chosen WHERE scope = 'label')
  AND a.bucket >= {min_start:DateTime('UTC')}
  AND a.bucket >= c.period_start AND a.bucket < c.period_end
GROUP BY c.budget_id, c.version
"""
)


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
        "mode": mode,
        "since": since or min(starts),
        "ids": list(ids),
        "clients": list(clients),
        "min_start": min(starts),
    }
    rows = client.query(_SQL, parameters=parameters).result_rows
    return {
        (str(row[0]), int(row[1])): Spend(
            Decimal(row[2]), int(row[3]), int(row[4]), Decimal(row[5]), int(row[6]), int(row[7])
        )
        for row in rows
    }
