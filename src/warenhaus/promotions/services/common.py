"""What the promotions services share: the audited fields of a campaign, the parsing of staff
input (money, times, counts, reasons) and the campaign's row lock."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.utils.dateparse import parse_datetime

from warenhaus.core import audit
from warenhaus.core.errors import NotFound, ValidationFailed
from warenhaus.core.money import MoneyError, parse_amount

from ..models import Campaign

AUDIT_FIELDS = (
    "name",
    "status",
    "discount_kind",
    "discount_value",
    "discount_cap",
    "min_basket",
    "max_share",
    "channels",
    "valid_from",
    "valid_until",
    "total_limit",
    "per_customer_limit",
    "budget",
    "stacking",
    "code_mode",
    "customer_eligibility",
    "release_redemption_on_cancel",
    "auto_pause",
    "expected_redemptions_per_hour",
    "monitor_settings",
)


def _snap(c: Campaign) -> dict:
    return audit.snapshot(c, AUDIT_FIELDS)


def _reason(reason: str, *, required: bool = True) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise ValidationFailed(
            "Please give a reason; it goes into the audit trail.", code="reason_required"
        )
    return reason[:2000]


def _money(raw, field: str, *, allow_zero=True, optional=False) -> Decimal | None:
    if raw is None or raw == "":
        if optional:
            return None
        raw = "0"
    try:
        return parse_amount(raw, allow_zero=allow_zero)
    except MoneyError as err:
        raise ValidationFailed(f"{field}: {err}", code="invalid_money", field=field) from None


def _when(raw, field: str, *, optional=True) -> datetime | None:
    if raw is None or raw == "":
        if optional:
            return None
        raise ValidationFailed(f"{field} is required.", code="validation_error", field=field)
    if isinstance(raw, datetime):
        value = raw
    else:
        value = parse_datetime(str(raw))
    if value is None or value.tzinfo is None:
        raise ValidationFailed(
            f"{field} must be an ISO 8601 time with offset, e.g. 2026-07-01T00:00:00+00:00.",
            code="validation_error",
            field=field,
        )
    return value


#: the largest value of each count a campaign takes (far beyond any real campaign, far below
#: what the columns hold: 2^31 - 1 on PostgreSQL)
COUNT_MAX = {
    "total_limit": 100_000_000,
    "per_customer_limit": 10_000,
    "expected_redemptions_per_hour": 1_000_000,
    "max_uses_per_code": 100_000_000,
}


def _count(raw, field: str) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= COUNT_MAX[field]:
        raise ValidationFailed(
            f"{field} must be a whole number from 1 to {COUNT_MAX[field]:,} (or omitted for no limit).",
            code="validation_error",
            field=field,
        )
    return raw


def _locked_campaign(campaign_id) -> Campaign:
    try:
        pk = int(campaign_id)
    except (TypeError, ValueError):
        raise NotFound("No such campaign.", code="campaign_not_found") from None
    c = Campaign.objects.select_for_update().filter(pk=pk).first()
    if c is None:
        raise NotFound("No such campaign.", code="campaign_not_found")
    return c
