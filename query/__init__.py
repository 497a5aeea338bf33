"""Usage reports: spend and tokens by client, user, provider, model and period.

    from usagemeter.query import get_usage, fetch_usage

    report = get_usage(client, "acme", period="day", tz="Asia/Kolkata")  # a ClickHouse client at hand
    report = fetch_usage("http://127.0.0.1:8765", "acme")                # through ``usagemeter serve``
    print(report.total_cost, report.current_period.cost, report.by_model)

Reports read the 15-minute aggregate tables, never the raw events; periods are local days or months in
any IANA time zone, exact because every UTC offset in use is a multiple of 15 minutes. Costs are
``Decimal`` and travel as strings in JSON. The HTTP API that serves them is
``usagemeter.api`` (this package does not import a web framework).
"""

from usagemeter.query.analytics import run_query
from usagemeter.query.answer import UsageAnswer
from usagemeter.query.models import UsageReport
from usagemeter.query.remote import fetch_usage
from usagemeter.query.remote_report import fetch_answer
from usagemeter.query.report import get_usage
from usagemeter.query.spec import Filter, UsageQuery
from usagemeter.schemas.errors import UsageApiError, UsageApiUnreachableError

__all__ = [
    "Filter",
    "UsageAnswer",
    "UsageApiError",
    "UsageApiUnreachableError",
    "UsageQuery",
    "UsageReport",
    "fetch_answer",
    "fetch_usage",
    "get_usage",
    "run_query",
]
