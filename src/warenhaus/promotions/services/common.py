"""What the promotions services share: the audited fields of a campaign, the parsing of staff
input (money, times, counts, reasons) and the campaign's row lock."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from warenhaus.core import audit, parsing
from warenhaus.core.errors import NotFound

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
    return parsing.reason(reason, required=required)


def _money(raw, field: str, *, allow_zero=True, optional=False) -> Decimal | None:
    return parsing.amount(raw, field, allow_zero=allow_zero, optional=optional)


def _when(raw, field: str, *, optional=True) -> datetime | None:
    return parsing.aware_time(raw, field, optional=optional)


#: the largest value of each count a campaign takes (far beyond any real campaign, far below
#: what the columns hold: 2^31 - 1 on PostgreSQL)
COUNT_MAX = {
    "total_limit": 100_000_000,
    "per_customer_limit": 10_000,
    "expected_redemptions_per_hour": 1_000_000,
    "max_uses_per_code": 100_000_000,
}


def _count(raw, field: str) -> int | None:
    high, note = COUNT_MAX[field], "(or omitted for no limit)"
    return parsing.whole(raw, field, low=1, high=high, optional=True, note=note)


def _locked_campaign(campaign_id) -> Campaign:
    try:
        pk = int(campaign_id)
    except (TypeError, ValueError):
        raise NotFound("No such campaign.", code="campaign_not_found") from None
    c = Campaign.objects.select_for_update().filter(pk=pk).first()
    if c is None:
        raise NotFound("No such campaign.", code="campaign_not_found")
    return c
