"""core.parsing: one way to read a time, a whole number, an amount and a reason."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from warenhaus.core import parsing
from warenhaus.core.errors import ValidationFailed


def _refused(call) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as err:
        call()
    return err.value


def test_a_time_needs_its_offset_and_must_exist():
    assert parsing.aware_time("2026-07-01T10:00:00+02:00", "starts_at").utcoffset().seconds == 7200
    moment = datetime(2026, 7, 1, tzinfo=UTC)
    assert parsing.aware_time(moment, "starts_at") is moment
    assert parsing.aware_time("", "starts_at", optional=True) is None
    for raw in ("2026-07-01T10:00:00", "2026-02-30T10:00:00+00:00", "morgen", 5, None):
        err = _refused(lambda raw=raw: parsing.aware_time(raw, "starts_at"))
        assert err.code == "validation_error" and err.extra["field"] == "starts_at"
    err = _refused(lambda: parsing.aware_time("x", "placed_from", code="invalid_selector"))
    assert err.code == "invalid_selector"


def test_a_whole_number_is_an_int_within_its_bounds():
    assert parsing.whole(5, "units", low=1, high=9) == 5
    assert parsing.whole(None, "units", low=1, high=9, optional=True) is None
    for raw in (0, 10, True, "5", 5.0, None):
        err = _refused(lambda raw=raw: parsing.whole(raw, "units", low=1, high=9))
        assert err.code == "validation_error"


def test_an_amount_is_a_plain_decimal_string():
    assert parsing.amount("49.97", "price") == Decimal("49.97")
    assert parsing.amount("", "budget", optional=True) is None
    assert parsing.amount(None, "min_basket") == Decimal("0.00")
    for raw in ("49.975", "-1", "1e3", 49.97, "0"):
        err = _refused(lambda raw=raw: parsing.amount(raw, "price", allow_zero=False))
        assert err.code == "invalid_money" and str(err).startswith("price: ")


def test_a_reason_is_stripped_bounded_and_required_unless_said_otherwise():
    assert parsing.reason("  Tippfehler im Preis ") == "Tippfehler im Preis"
    assert len(parsing.reason("x" * 5000)) == parsing.REASON_MAX
    assert parsing.reason("   ", required=False) == ""
    assert _refused(lambda: parsing.reason(" ")).code == "reason_required"


def test_whole_number_is_still_importable_from_apiutil():
    from warenhaus.core import apiutil

    assert apiutil.whole_number is parsing.whole_number
