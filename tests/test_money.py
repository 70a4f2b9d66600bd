"""Money is the one module that rounds; these properties pin down how it rounds.

Every test here is a property over many generated amounts (hypothesis), checked against an
independent reference computed in integer cents or exact fractions, so a wrong rounding mode, a
lost cent in a split or a float sneaking in shows up as a counter-example.
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from warenhaus.checkout.pricing import PricedLine, compute
from warenhaus.core.money import (
    CENT,
    MAX_AMOUNT,
    ZERO,
    Money,
    MoneyError,
    cents,
    money_json,
    parse_amount,
    split_proportionally,
    vat_of_gross,
)

# The autouse cache fixture in conftest is function-scoped; it is harmless to share it across
# the examples of one property (nothing here touches the cache or the database).
money_settings = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)

MAX_CENTS = int(MAX_AMOUNT * 100)
STRICT_AMOUNT = re.compile(r"\A[0-9]+(\.[0-9]{1,2})?\Z")


def amounts(min_cents: int = 0, max_cents: int = MAX_CENTS):
    """Decimal amounts in whole cents, as the shop stores them."""
    return st.integers(min_value=min_cents, max_value=max_cents).map(
        lambda c: Decimal(c).scaleb(-2)
    )


def frac(d: Decimal) -> Fraction:
    return Fraction(d)


def exactly_cents(d: Decimal) -> bool:
    return d.as_tuple().exponent == -2


# --- cents: half up, to the cent --------------------------------------------------------------


def reference_half_up(milli: int) -> Decimal:
    """Round ``milli`` thousandths to cents, half away from zero, in integer arithmetic."""
    sign = -1 if milli < 0 else 1
    return Decimal(sign * ((abs(milli) + 5) // 10)).scaleb(-2)


@money_settings
@given(st.integers(min_value=-(10**12), max_value=10**12))
@example(5)  # 0.005 -> 0.01
@example(15)  # 0.015 -> 0.02 (banker's rounding would give 0.02 too; 0.025 tells them apart)
@example(25)  # 0.025 -> 0.03, not 0.02
@example(-5)  # -0.005 -> -0.01
@example(4)
def test_cents_rounds_half_up_on_thousandths(milli):
    value = Decimal(milli).scaleb(-3)
    assert cents(value) == reference_half_up(milli)
    assert exactly_cents(cents(value))


@money_settings
@given(
    st.decimals(
        min_value=-(10**9), max_value=10**9, allow_nan=False, allow_infinity=False, places=6
    )
)
def test_cents_is_nearest_cent_with_ties_up(value):
    rounded = cents(value)
    assert exactly_cents(rounded)
    diff = frac(value) - frac(rounded)
    assert abs(diff) <= Fraction(1, 200)
    if abs(diff) == Fraction(1, 200):  # a tie goes away from zero
        assert abs(rounded) > abs(value)


@money_settings
@given(amounts(-MAX_CENTS))
def test_cents_leaves_whole_cents_alone(value):
    assert cents(value) == value
    assert cents(cents(value)) == cents(value)


@money_settings
@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_cents_accepts_ints_and_strings_alike(n):
    assert cents(n) == cents(str(n)) == cents(Decimal(n)) == Decimal(n).quantize(CENT)


# --- parse_amount: strict decimal strings ----------------------------------------------------

plain_amount_text = st.builds(
    lambda whole, dec: f"{whole}.{dec}" if dec is not None else str(whole),
    st.integers(min_value=0, max_value=999_999),
    st.one_of(st.none(), st.from_regex(r"\A[0-9]{1,2}\Z")),
)


@money_settings
@given(plain_amount_text)
@example("49.97")
@example("0.1")
@example("999999.99")
@example("0")
def test_parse_amount_accepts_plain_decimal_strings(text):
    value = parse_amount(text)
    assert value == Decimal(text)
    assert exactly_cents(value)
    assert ZERO <= value <= MAX_AMOUNT


@money_settings
@given(amounts())
def test_parse_amount_round_trips_money_json(value):
    assert parse_amount(money_json(value)["amount"]) == value
    assert parse_amount(value) == value


@money_settings
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_parse_amount_refuses_floats(x):
    with pytest.raises(MoneyError):
        parse_amount(x)


@pytest.mark.parametrize("raw", [True, False])
def test_parse_amount_refuses_booleans(raw):
    with pytest.raises(MoneyError):
        parse_amount(raw)


@money_settings
@given(
    st.integers(min_value=0, max_value=10**7),
    st.integers(min_value=0, max_value=9),
    st.integers(min_value=3, max_value=8),
)
def test_parse_amount_refuses_more_than_two_decimals(whole, last_digit, places):
    text = f"{whole}." + "0" * (places - 1) + str(last_digit)
    with pytest.raises(MoneyError):
        parse_amount(text)
    with pytest.raises(MoneyError):
        parse_amount(Decimal(text))


@money_settings
@given(amounts(min_cents=1))
def test_parse_amount_refuses_negative_amounts(value):
    with pytest.raises(MoneyError):
        parse_amount(f"-{value}")


@money_settings
@given(amounts(min_cents=MAX_CENTS + 1, max_cents=10**15))
def test_parse_amount_refuses_amounts_above_the_maximum(value):
    with pytest.raises(MoneyError):
        parse_amount(str(value))


@pytest.mark.parametrize("raw", ["0", "0.0", "0.00", ZERO])
def test_parse_amount_zero_only_when_allowed(raw):
    assert parse_amount(raw) == ZERO
    with pytest.raises(MoneyError):
        parse_amount(raw, allow_zero=False)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        " ",
        "abc",
        "1,50",
        "1.2.3",
        "EUR 5",
        "5 EUR",
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        "0x10",
        "1e-3",
        None,
        [],
        {},
    ],
)
def test_parse_amount_refuses_garbage(raw):
    with pytest.raises(MoneyError):
        parse_amount(raw)


@money_settings
@given(st.text(max_size=12))
def test_parse_amount_only_ever_returns_valid_cents_or_money_error(text):
    try:
        value = parse_amount(text)
    except MoneyError:
        return
    assert exactly_cents(value)
    assert ZERO <= value <= MAX_AMOUNT


@money_settings
@given(
    st.one_of(st.text(max_size=12), st.text(alphabet="0123456789.,-+eE_ \u0664\u00a0", max_size=10))
)
@example("1e2")
@example(" 49.97 ")
@example("49.")
@example(".5")
def test_parse_amount_accepts_exactly_the_plain_grammar(text):
    """A string parses if and only if it is plain ASCII digits with at most two decimals (and
    within the maximum); everything else is a MoneyError, never another exception."""
    stripped = text.strip()
    plain = STRICT_AMOUNT.match(stripped) is not None and stripped.isascii()
    try:
        value = parse_amount(text)
    except MoneyError:
        assert not plain or Decimal(stripped) > MAX_AMOUNT, text
        return
    assert plain, text
    assert value == Decimal(stripped)


# The API promises "a decimal string"; these are not what a client means.
@pytest.mark.parametrize("raw", ["-0", "-0.00"])
def test_parse_amount_never_returns_negative_zero(raw):
    try:
        value = parse_amount(raw)
    except MoneyError:
        return
    assert not value.is_signed()


@pytest.mark.parametrize("raw", ["1e2", "1E+2", "1_000", "+5", "\u0664\u0669.\u0669\u0667"])
def test_parse_amount_accepts_only_plain_notation(raw):
    assert not STRICT_AMOUNT.match(raw.strip())
    with pytest.raises(MoneyError):
        parse_amount(raw)


# --- VAT extraction from gross amounts --------------------------------------------------------

vat_rates = st.sampled_from([Decimal("19"), Decimal("7"), Decimal("0")])


@money_settings
@given(amounts(), vat_rates)
@example(Decimal("49.97"), Decimal("19"))
@example(Decimal("0.01"), Decimal("19"))
def test_vat_of_gross_is_the_rounded_exact_share(gross, rate):
    vat = vat_of_gross(gross, rate)
    exact = frac(gross) * frac(rate) / (100 + frac(rate))
    assert exactly_cents(vat)
    assert abs(frac(vat) - exact) <= Fraction(1, 200)
    g, r = int(gross * 100), int(rate)
    assert int(vat * 100) == (2 * g * r + (100 + r)) // (2 * (100 + r))  # half up, in integers
    assert ZERO <= vat <= gross
    if rate == 0:
        assert vat == ZERO


@money_settings
@given(amounts(max_cents=10**7), amounts(max_cents=10**7), vat_rates)
def test_vat_of_gross_is_monotonic(a, b, rate):
    lo, hi = sorted([a, b])
    assert vat_of_gross(lo, rate) <= vat_of_gross(hi, rate)


def test_vat_of_gross_known_values():
    assert vat_of_gross(Decimal("119.00"), Decimal("19")) == Decimal("19.00")
    assert vat_of_gross(Decimal("107.00"), Decimal("7")) == Decimal("7.00")
    assert vat_of_gross(Decimal("49.97"), Decimal("19")) == Decimal("7.98")  # 7.9783...
    assert vat_of_gross(Decimal("4.90"), Decimal("7")) == Decimal("0.32")  # 0.3205...


# --- splitting an amount in proportion --------------------------------------------------------

weights_dicts = st.dictionaries(
    keys=st.sampled_from([Decimal("19"), Decimal("7"), Decimal("0"), "a", "b", "c", "d"]),
    values=amounts(max_cents=10**8),
    min_size=1,
    max_size=7,
)


@money_settings
@given(amounts(max_cents=10**8), weights_dicts)
@example(Decimal("1.00"), {"a": Decimal("1"), "b": Decimal("1"), "c": Decimal("1")})
@example(Decimal("0.01"), {"a": Decimal("1"), "b": Decimal("1")})
@example(Decimal("4.90"), {"a": ZERO, "b": ZERO})
def test_split_sums_exactly_and_stays_within_a_cent_of_proportional(total, weights):
    shares = split_proportionally(total, weights)
    assert set(shares) == set(weights)
    assert sum(shares.values(), ZERO) == total
    assert all(exactly_cents(s) and s >= ZERO for s in shares.values())
    weight_sum = sum((frac(w) for w in weights.values()), Fraction(0))
    if weight_sum == 0:
        return  # nothing to be proportional to; all of it goes somewhere, exactly once
    for key, share in shares.items():
        exact = frac(total) * frac(weights[key]) / weight_sum
        assert abs(frac(share) - exact) < Fraction(1, 100), (key, share, exact)
        if weights[key] == 0:
            assert share == ZERO


@money_settings
@given(amounts(max_cents=10**8), amounts(min_cents=1, max_cents=10**8))
def test_split_over_one_weight_is_the_whole(total, weight):
    assert split_proportionally(total, {"only": weight}) == {"only": total}


def test_split_of_nothing_is_empty():
    assert split_proportionally(Decimal("5.00"), {}) == {}


def test_split_of_a_negative_total_sums_exactly():
    shares = split_proportionally(Decimal("-1.00"), {"a": 1, "b": 1, "c": 1})
    assert sum(shares.values(), ZERO) == Decimal("-1.00")


@money_settings
@given(amounts(max_cents=10**8), weights_dicts)
def test_a_negative_total_splits_as_the_mirror_of_the_positive(total, weights):
    assert split_proportionally(-total, weights) == {
        k: -v for k, v in split_proportionally(total, weights).items()
    }
    assert sum(split_proportionally(-total, weights).values(), ZERO) == -total


# --- cart totals ------------------------------------------------------------------------------

priced_lines = st.lists(
    st.builds(
        PricedLine,
        variant_id=st.integers(min_value=1, max_value=10**6),
        sku=st.just("SKU"),
        title=st.just("Ding"),
        unit_price=amounts(min_cents=1, max_cents=10**6),
        quantity=st.integers(min_value=1, max_value=99),
        vat_rate=st.sampled_from([Decimal("19"), Decimal("7")]),
    ),
    min_size=1,
    max_size=8,
)
shipping_costs = st.one_of(
    st.sampled_from([ZERO, Decimal("4.90"), Decimal("12.90")]), amounts(max_cents=10**5)
)


@money_settings
@given(priced_lines, shipping_costs, amounts(max_cents=10**9))
def test_totals_add_up(lines, shipping_cost, discount):
    t = compute(lines, shipping_cost=shipping_cost, discount=discount)
    subtotal = sum((cents(line.unit_price * line.quantity) for line in lines), ZERO)
    assert t.subtotal == subtotal
    assert t.discount == min(discount, subtotal)
    assert t.shipping == shipping_cost
    assert t.total == t.subtotal - t.discount + t.shipping
    assert t.total >= ZERO
    for amount in (t.subtotal, t.discount, t.shipping, t.vat, t.total):
        assert exactly_cents(amount)


@money_settings
@given(priced_lines, shipping_costs, amounts(max_cents=10**9))
def test_vat_breakdown_sums_to_vat_and_covers_the_total(lines, shipping_cost, discount):
    t = compute(lines, shipping_cost=shipping_cost, discount=discount)
    rates = {line.vat_rate for line in lines}
    assert [Decimal(r["rate"]) for r in t.vat_breakdown] == sorted(rates, reverse=True)
    assert sum((Decimal(r["amount"]) for r in t.vat_breakdown), ZERO) == t.vat
    assert sum((Decimal(r["gross"]) for r in t.vat_breakdown), ZERO) == t.total
    for r in t.vat_breakdown:
        gross, rate = Decimal(r["gross"]), Decimal(r["rate"])
        assert gross >= ZERO
        assert Decimal(r["amount"]) == vat_of_gross(gross, rate)
    assert ZERO <= t.vat <= t.total


@money_settings
@given(priced_lines, shipping_costs)
def test_a_discount_never_raises_the_total_or_the_vat(lines, shipping_cost):
    full = compute(lines, shipping_cost=shipping_cost)
    off = compute(lines, shipping_cost=shipping_cost, discount=full.subtotal)
    assert off.total == shipping_cost
    assert off.vat <= full.vat
    assert off.total <= full.total


@money_settings
@given(shipping_costs, amounts())
def test_an_empty_cart_costs_nothing(shipping_cost, discount):
    t = compute([], shipping_cost=shipping_cost, discount=discount)
    assert (t.subtotal, t.discount, t.shipping, t.vat, t.total) == (ZERO, ZERO, ZERO, ZERO, ZERO)
    assert t.vat_breakdown == []


def test_a_known_basket():
    lines = [
        PricedLine(
            variant_id=1,
            sku="A",
            title="Buch",
            unit_price=Decimal("12.99"),
            quantity=2,
            vat_rate=Decimal("7"),
        ),
        PricedLine(
            variant_id=2,
            sku="B",
            title="Kabel",
            unit_price=Decimal("9.99"),
            quantity=1,
            vat_rate=Decimal("19"),
        ),
    ]
    t = compute(lines, shipping_cost=Decimal("4.90"), discount=Decimal("5.00"))
    assert t.subtotal == Decimal("35.97")
    assert t.total == Decimal("35.87")
    # goods 25.98 @7% and 9.99 @19%; discount 5.00 -> 3.61 / 1.39; shipping 4.90 -> 3.54 / 1.36
    assert t.vat_breakdown == [
        {"rate": "19", "amount": "1.59", "gross": "9.96"},
        {"rate": "7", "amount": "1.70", "gross": "25.91"},  # 1.6950... rounds up
    ]
    assert t.vat == Decimal("3.29")
    assert t.as_json()["total"] == {"amount": "35.87", "currency": "EUR"}


@money_settings
@given(amounts(-MAX_CENTS))
def test_money_json_is_a_two_decimal_string(value):
    body = money_json(value)
    assert body["currency"] == "EUR"
    assert Decimal(body["amount"]) == value
    assert re.fullmatch(r"-?[0-9]+\.[0-9]{2}", body["amount"])


def test_money_prints_the_german_way():
    assert str(Money(Decimal("1234.5"))) == "1.234,50 €"
    assert str(Money(Decimal("0.01"), "CHF")) == "0,01 CHF"
