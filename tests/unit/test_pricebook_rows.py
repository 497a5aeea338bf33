"""The price book's rows, built from small hand-made genai-prices models and from the bundled data."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from genai_prices.data_snapshot import DataSnapshot, get_snapshot
from genai_prices.types import (
    ClauseAnd,
    ClauseEquals,
    ClauseOr,
    ClauseStartsWith,
    ConditionalPrice,
    ModelInfo,
    ModelPrice,
    PriceVariant,
    Provider,
    StartDateConstraint,
    Tier,
    TieredPrices,
    TimeOfDateConstraint,
)

from usagemeter.pricing import columns, pricebook

ONE_SECOND = timedelta(seconds=1)


def _model(model_id: str, prices: ModelPrice | list[ConditionalPrice], match: object = None) -> ModelInfo:
    return ModelInfo(id=model_id, match=match or ClauseEquals(equals=model_id), prices=prices)  # type: ignore[arg-type]


def _price(input_mtok: str, output_mtok: str = "1") -> ModelPrice:
    return ModelPrice(input_mtok=Decimal(input_mtok), output_mtok=Decimal(output_mtok))


def _assert_contiguous(rows: list[pricebook.PriceRow]) -> None:
    assert rows[0].valid_from == columns.BOOK_START
    assert rows[-1].valid_to == columns.BOOK_END
    for earlier, later in itertools.pairwise(rows):
        assert earlier.valid_to + ONE_SECOND == later.valid_from, "a gap or an overlap"


def test_a_plain_price_is_one_row_for_all_time() -> None:
    rows = pricebook.model_rows("p", _model("m", _price("2")))
    assert len(rows) == 1
    _assert_contiguous(rows)
    assert rows[0].grid.price("input_mtok") == Decimal("2")
    assert not rows[0].grid.approximate


def test_start_dates_give_contiguous_periods_with_the_price_get_prices_picks() -> None:
    model = _model(
        "m",
        [
            ConditionalPrice(constraint=None, prices=_price("1")),
            ConditionalPrice(constraint=StartDateConstraint(start_date=date(2024, 3, 1)), prices=_price("2")),
            ConditionalPrice(constraint=StartDateConstraint(start_date=date(2025, 7, 15)), prices=_price("3")),
        ],
    )
    rows = pricebook.model_rows("p", model)
    _assert_contiguous(rows)
    assert [r.valid_from for r in rows] == [
        columns.BOOK_START,
        datetime(2024, 3, 1, tzinfo=UTC),
        datetime(2025, 7, 15, tzinfo=UTC),
    ]
    assert rows[0].valid_to == datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)
    for row in rows:
        for moment in (row.valid_from, row.valid_to):
            expected = model.get_prices(moment).input_mtok
            got = row.grid.price("input_mtok")
            assert got == expected, f"{moment}: book {got}, genai-prices {expected}"


def test_before_the_first_start_date_the_first_price_applies() -> None:
    model = _model(
        "m",
        [
            ConditionalPrice(constraint=StartDateConstraint(start_date=date(2024, 1, 1)), prices=_price("5")),
            ConditionalPrice(constraint=StartDateConstraint(start_date=date(2025, 1, 1)), prices=_price("6")),
        ],
    )
    rows = pricebook.model_rows("p", model)
    _assert_contiguous(rows)
    # Before 2024 and during 2024 the first price applies: one merged period, then the second price.
    assert [r.grid.price("input_mtok") for r in rows] == [Decimal("5"), Decimal("6")]
    assert rows[1].valid_from == datetime(2025, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("prices", "approximate"),
    [
        pytest.param(_price("1"), False, id="plain price"),
        pytest.param(
            ModelPrice(input_mtok=TieredPrices(base=Decimal("1"), tiers=[Tier(start=200_000, price=Decimal("2"))])),
            False,
            id="tiered price",
        ),
        pytest.param(
            ModelPrice(input_mtok=Decimal("1"), input_image_mtok=Decimal("3")), True, id="price key without a column"
        ),
    ],
)
def test_approximate_flag(prices: ModelPrice, approximate: bool) -> None:
    (row,) = pricebook.model_rows("p", _model("m", prices))
    assert row.grid.approximate is approximate
    assert row.grid.price("input_mtok") == Decimal("1")


def test_tiers_of_all_kinds_make_one_union_of_tier_columns() -> None:
    prices = ModelPrice(
        input_mtok=TieredPrices(base=Decimal("1"), tiers=[Tier(start=200_000, price=Decimal("2"))]),
        output_mtok=TieredPrices(
            base=Decimal("10"),
            tiers=[Tier(start=128_000, price=Decimal("20")), Tier(start=200_000, price=Decimal("30"))],
        ),
        cache_read_mtok=Decimal("0.5"),
    )
    (row,) = pricebook.model_rows("p", _model("m", prices))
    assert row.grid.tier_starts == (128_000, 200_000)
    assert [row.grid.price("input_mtok", tier=t) for t in range(3)] == [Decimal("1"), Decimal("1"), Decimal("2")]
    assert [row.grid.price("output_mtok", tier=t) for t in range(3)] == [Decimal("10"), Decimal("20"), Decimal("30")]
    assert [row.grid.price("cache_read_mtok", tier=t) for t in range(3)] == [Decimal("0.5")] * 3


def test_time_of_day_windows_become_segments_of_the_utc_day() -> None:
    window = TimeOfDateConstraint(start_time=time(0, 30, tzinfo=UTC), end_time=time(16, 30, tzinfo=UTC))
    model = _model(
        "m",
        [
            ConditionalPrice(constraint=None, prices=_price("1")),
            ConditionalPrice(constraint=window, prices=_price("2")),
        ],
    )
    (row,) = pricebook.model_rows("p", model)
    assert row.grid.day_cuts == (1_800, 59_400)
    assert [row.grid.price("input_mtok", segment=s) for s in range(3)] == [Decimal("1"), Decimal("2"), Decimal("1")]
    assert not row.grid.approximate


def test_batch_on_openai_follows_the_published_rule_until_genai_prices_has_a_variant() -> None:
    variant = PriceVariant(
        when={"processing": "batch"},
        prices=ModelPrice(input_mtok=Decimal("0.8")),
        constraint=StartDateConstraint(start_date=date(2026, 10, 14)),
    )
    model = ModelInfo(id="m", match=ClauseEquals(equals="m"), prices=_price("2", "8"), price_variants=[variant])
    batch = [row for row in pricebook.model_rows("openai", model) if row.variant == "batch"]
    assert [(r.valid_from.date(), r.grid.price("input_mtok"), r.grid.price("output_mtok")) for r in batch] == [
        (date(2024, 4, 15), Decimal("1"), Decimal("4")),  # the rule: half of every token price
        (date(2026, 10, 14), Decimal("0.8"), Decimal("8")),  # genai-prices' variant; output stays standard
    ]
    assert batch[0].grid.rule.startswith("https://platform.openai.com")


def test_alias_rows_for_every_equals_literal_through_or_and_and() -> None:
    match = ClauseOr(
        or_=[
            ClauseEquals(equals="Big-Model"),
            ClauseAnd(and_=[ClauseEquals(equals="big-model-2025"), ClauseStartsWith(starts_with="big")]),
            ClauseStartsWith(starts_with="big-model-"),
        ]
    )
    provider = Provider(
        id="acme", name="Acme", api_pattern="acme", model_match=ClauseStartsWith(starts_with="big"), models=[]
    )
    provider.models.append(_model("big-model", _price("1"), match=match))
    provider.models.append(_model("Odd-Id", _price("1"), match=ClauseEquals(equals="something-else")))
    rows = pricebook.alias_rows(DataSnapshot(providers=[provider], from_auto_update=False))
    assert {(r.provider_raw, r.model_raw): (r.provider_id, r.model_id) for r in rows} == {
        ("acme", "big-model"): ("acme", "big-model"),
        ("acme", "big-model-2025"): ("acme", "big-model"),
        ("acme", "odd-id"): ("acme", "Odd-Id"),  # genai-prices cannot find it by id; the id still maps
        ("acme", "something-else"): ("acme", "Odd-Id"),
        ("", "big-model"): ("acme", "big-model"),  # provider-less: acme's model_match takes "big..."
        ("", "big-model-2025"): ("acme", "big-model"),
    }


def test_the_bundled_data_gives_contiguous_standard_rows_for_every_model() -> None:
    for provider in get_snapshot().providers:
        for model in provider.models:
            _assert_contiguous([row for row in pricebook.model_rows(provider.id, model) if not row.variant])


def test_gpt_4o_mini_resolves_with_and_without_provider() -> None:
    rows = {(r.provider_raw, r.model_raw): (r.provider_id, r.model_id) for r in pricebook.build().aliases}
    assert rows[("openai", "gpt-4o-mini-2024-07-18")] == ("openai", "gpt-4o-mini")
    assert rows[("", "gpt-4o-mini")] == ("openai", "gpt-4o-mini")
