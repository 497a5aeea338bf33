"""The dashboard's formatting and escaping helpers: what a reader sees for small and large amounts, the
change against the previous period, and values that could break out of the page's markup."""

from __future__ import annotations

from decimal import Decimal

import pytest

from usagemeter.dashboard.html import change, e, json_script, money
from usagemeter.dashboard.view import View


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        pytest.param("0", "$0.00", id="nothing"),
        pytest.param("1234.567", "$1,234.57", id="cents with thousands"),
        pytest.param("0.01", "$0.01", id="one cent"),
        pytest.param("0.0042", "$0.0042", id="below a cent: significant places"),
        pytest.param("0.0000031", "$3.10e-6", id="far below a cent: exponent"),
    ],
)
def test_money(amount: str, shown: str) -> None:
    assert money(Decimal(amount)) == shown


@pytest.mark.parametrize(
    ("current", "previous", "shown"),
    [
        pytest.param(150, 100, "+50.0 %", id="up"),
        pytest.param(Decimal("0.5"), Decimal(2), "-75.0 %", id="down, money"),
        pytest.param(3, 0, "new", id="nothing before"),
        pytest.param(0, 0, "±0 %", id="nothing at all"),
    ],
)
def test_change(current: int | Decimal, previous: int | Decimal, shown: str) -> None:
    assert change(current, previous) == shown


def test_markup_cannot_be_injected() -> None:
    assert e('"><img src=x onerror=alert(1)>') == "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"
    block = json_script("data", {"label": "</script><script>alert(1)</script>"})
    assert block.count("</script>") == 1 and block.endswith("</script>")


def test_a_label_filter_needs_a_key_and_a_value() -> None:
    assert View(label="team=search").filters()[0].dimension == "label:team"
    with pytest.raises(ValueError, match="key=value"):
        View(label="team")
