"""The top models and users of a budget's scope in its period, for an alert's payload (one query per alert).

Alerts are rare, so this is read only when one is written, never per flush. A label budget has no user
dimension in its aggregate (``usage_15m_by_label``): its alerts list models only.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final

from clickhouse_connect.driver.client import Client

from usagemeter.budgets.alerts import Contributor
from usagemeter.budgets.model import Scope

_BY_USER_SQL: Final = """
SELECT 'model', concat(provider, '/', model) AS name, sum(cost_total) AS spend
FROM usage_15m_by_user
WHERE client_id = {client_id:String} AND bucket >= {start:DateTime('UTC')} AND bucket < {end:DateTime('UTC')}
  AND ({user_id:String} = '' OR user_id = {user_id:String})
  AND ({provider:String} = '' OR provider = {provider:String}) AND ({model:String} = '' OR model = {model:String})
GROUP BY name ORDER BY spend DESC, name LIMIT {top:UInt32}
UNION ALL
SELECT 'user', user_id AS name, sum(cost_total) AS spend
FROM usage_15m_by_user
WHERE client_id = {client_id:String} AND bucket >= {start:DateTime('UTC')} AND bucket < {end:DateTime('UTC')}
  AND ({user_id:String} = '' OR user_id = {user_id:String})
  AND ({provider:String} = '' OR provider = {provider:String}) AND ({model:String} = '' OR model = {model:String})
GROUP BY name ORDER BY spend DESC, name LIMIT {top:UInt32}
"""

_BY_LABEL_SQL: Final = """
SELECT 'model', concat(provider, '/', model) AS name, sum(cost_total) AS spend
FROM usage_15m_by_label
WHERE client_id = {client_id:String} AND label_key = {label_key:String} AND label_value = {label_value:String}
  AND bucket >= {start:DateTime('UTC')} AND bucket < {end:DateTime('UTC')}
GROUP BY name ORDER BY spend DESC, name LIMIT {top:UInt32}
"""


def top_contributors(
    client: Client, scope: Scope, start: datetime, end: datetime, *, top: int = 3
) -> tuple[tuple[Contributor, ...], tuple[Contributor, ...]]:
    """(top models as ``provider/model``, top users), most expensive first."""
    parameters = {
        "client_id": scope.client_id,
        "start": start,
        "end": end,
        "top": top,
        "user_id": scope.user_id or "",
        "provider": scope.provider or "",
        "model": scope.model or "",
        "label_key": scope.label_key or "",
        "label_value": scope.label_value or "",
    }
    sql = _BY_LABEL_SQL if scope.kind == "label" else _BY_USER_SQL
    rows = client.query(sql, parameters=parameters).result_rows
    models = tuple(Contributor(name=str(n), spend=Decimal(s)) for kind, n, s in rows if kind == "model")
    users = tuple(Contributor(name=str(n), spend=Decimal(s)) for kind, n, s in rows if kind == "user")
    return models, users
