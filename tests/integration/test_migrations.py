import pytest
from clickhouse_connect.driver.client import Client

from usagemeter.consumers import migrations

pytestmark = pytest.mark.clickhouse


def test_migrate_twice_applies_nothing_the_second_time(clickhouse: Client) -> None:
    assert migrations.apply(clickhouse) == []
    names = {row[0] for row in clickhouse.query("SHOW TABLES").result_rows}
    assert {"usage_staging", "usage_events", "usage_15m_by_user", "usage_15m_by_model"} <= names
