"""Making a deal, reading it, cancelling it, and giving its unsold rest back to stock.

The contingent is taken from the variant's stock when the deal is made (allocated, so regular
sales cannot eat it) and accounted on the deal: ``sold + held + released_units <= units``,
changed only by conditional UPDATEs and held by a check constraint. After the end (or a
cancellation) what nobody bought or holds goes back to regular stock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Min

from warenhaus.catalog.models import PriceChange, Variant
from warenhaus.core import audit, parsing
from warenhaus.core.clock import now
from warenhaus.core.errors import NotFound, ValidationFailed
from warenhaus.core.money import money_json
from warenhaus.inventory import services as inventory

from ..cache import cache
from ..models import Deal, DealState

#: what a shopper sees of a deal before its start, during it, after it
STATES = tuple(DealState.values)

#: the range of each whole number a deal takes
DEAL_BOUNDS = {
    "units": (1, 1_000_000),
    "limit_per_customer": (1, 99),
    "hold_minutes": (1, 240),
    "offer_minutes": (1, 24 * 60),
    "admissions_per_minute": (1, 1_000_000),
}


def parse_when(raw, field: str) -> datetime:
    """An ISO 8601 time with offset, or ``validation_error`` naming ``field``."""
    return parsing.aware_time(raw, field)


def whole(raw, field: str, *, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``, or ``validation_error`` naming ``field``."""
    return parsing.whole(raw, field, low=low, high=high)


def _deal_number(raw, field: str) -> int:
    low, high = DEAL_BOUNDS[field]
    return whole(raw, field, low=low, high=high)


def lowest_price_before(variant, at: datetime, *, days: int = 30) -> Decimal:
    """The lowest price the variant had in the ``days`` before ``at`` (EU price-reduction rules:
    the "prior price" a reduction is measured against)."""
    start = at - timedelta(days=days)
    in_window = PriceChange.objects.filter(
        variant=variant, changed_at__gte=start, changed_at__lt=at
    )
    lowest = in_window.aggregate(p=Min("new_price"))["p"]
    before = (
        PriceChange.objects.filter(variant=variant, changed_at__lt=start)
        .order_by("-changed_at", "-id")
        .values_list("new_price", flat=True)
        .first()
    )
    first_in_window = (
        in_window.order_by("changed_at", "id").values_list("old_price", flat=True).first()
    )
    # the price in force when the window opened: the last change before it, else the price the
    # first change in the window replaced, else (no change at all) today's price
    opening = (
        before
        if before is not None
        else first_in_window
        if first_in_window is not None
        else variant.price
    )
    return min(p for p in (lowest, opening) if p is not None)


def create_deal(
    *,
    actor,
    sku: str,
    deal_price,
    units,
    starts_at,
    ends_at,
    limit_per_customer=1,
    hold_minutes=10,
    offer_minutes=30,
    admissions_per_minute=None,
    source: str = "api",
) -> Deal:
    variant = Variant.objects.select_related("product").filter(sku=str(sku or "")[:64]).first()
    if variant is None:
        raise NotFound(f"No variant '{sku}'.", code="sku_not_found")
    price = parsing.amount(deal_price, "deal_price", allow_zero=False)
    if price >= variant.price:
        raise ValidationFailed(
            f"A deal price must be below the regular price ({variant.price} EUR).",
            code="deal_price_not_lower",
        )
    units = _deal_number(units, "units")
    start, end = parse_when(starts_at, "starts_at"), parse_when(ends_at, "ends_at")
    if end <= start:
        raise ValidationFailed(
            "ends_at must be after starts_at.", code="validation_error", field="ends_at"
        )
    if end <= now():  # its contingent would be taken from stock only to go back at the next sweep
        raise ValidationFailed(
            "ends_at must be in the future.", code="validation_error", field="ends_at"
        )
    limit = _deal_number(limit_per_customer, "limit_per_customer")
    hold = _deal_number(hold_minutes, "hold_minutes")
    offer = _deal_number(offer_minutes, "offer_minutes")
    pace = (
        settings.DEAL_ADMISSIONS_PER_MINUTE
        if admissions_per_minute is None
        else _deal_number(admissions_per_minute, "admissions_per_minute")
    )
    with transaction.atomic():
        # the contingent is the deal's
        inventory.allocate(variant_id=variant.pk, quantity=units, sku=variant.sku)
        deal = Deal.objects.create(
            variant=variant,
            deal_price=price,
            regular_price=variant.price,
            lowest_price_30_days=lowest_price_before(variant, start),
            units=units,
            starts_at=start,
            ends_at=end,
            limit_per_customer=limit,
            hold_minutes=hold,
            offer_minutes=offer,
            admissions_per_minute=pace,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        audit.record(
            actor=actor,
            action="deal.create",
            obj=deal,
            after={
                "sku": variant.sku,
                "deal_price": str(price),
                "regular_price": str(variant.price),
                "units": units,
                "starts_at": start,
                "ends_at": end,
                "limit_per_customer": limit,
                "hold_minutes": hold,
            },
            source=source,
        )
    return deal


def _deal_pk(deal_id) -> int:
    try:
        return int(deal_id)
    except (TypeError, ValueError):
        raise NotFound("No such deal.", code="deal_not_found") from None


def get_deal(deal_id) -> Deal:
    deal = Deal.objects.select_related("variant__product").filter(pk=_deal_pk(deal_id)).first()
    if deal is None:
        raise NotFound("No such deal.", code="deal_not_found")
    return deal


def cached_deal(deal_id) -> Deal:
    """The deal's own row as joins and polls need it, at most ``DEALS_CACHE_SECONDS`` old
    (per process; dropped when this process changes the deal). Its start and end never change;
    counters may lag by that much (:mod:`warenhaus.deals.cache`)."""
    pk = _deal_pk(deal_id)

    def load() -> Deal:
        deal = Deal.objects.filter(pk=pk).first()
        if deal is None:
            raise NotFound("No such deal.", code="deal_not_found")
        return deal

    return cache.remembered(cache.deals, pk, load)


def state_of(deal: Deal, at: datetime | None = None) -> DealState:
    at = at or now()
    if deal.cancelled_at:
        return DealState.CANCELLED
    if at < deal.starts_at:
        return DealState.SCHEDULED
    if at >= deal.ends_at:
        return DealState.ENDED
    if deal.sold >= deal.units - deal.released_units:
        return DealState.SOLD_OUT
    return DealState.LIVE


def cancel_deal(*, deal_id, actor, reason: str, source: str = "api") -> Deal:
    """Stop a deal: nobody new is let in or offered anything; holds already given are honoured
    until their deadline; the rest of the contingent goes back to stock at the next sweep."""
    reason = parsing.reason(reason)
    with transaction.atomic():
        deal = Deal.objects.select_for_update(no_key=True).filter(pk=get_deal(deal_id).pk).first()
        if deal.cancelled_at is None:
            deal.cancelled_at = now()
            deal.save(update_fields=["cancelled_at"])
            audit.record(
                actor=actor,
                action="deal.cancel",
                obj=deal,
                after={"sold": deal.sold, "held": deal.held},
                reason=reason,
                source=source,
            )
    cache.forget_deal(deal.pk)
    release_rest(deal)
    return get_deal(deal.pk)


def release_rest(deal: Deal) -> int:
    """After the end: what nobody bought or holds goes back to regular stock (holds taken
    before the end are honoured until their deadline, then come back here)."""
    with transaction.atomic():
        d = Deal.objects.select_for_update(no_key=True).get(pk=deal.pk)
        free = d.units - d.sold - d.held - d.released_units
        if free <= 0:
            return 0
        Deal.objects.filter(pk=d.pk).update(released_units=F("released_units") + free)
        inventory.release(variant_id=d.variant_id, quantity=free)
    cache.forget_deal(deal.pk)
    return free


def deal_json(deal: Deal, *, at: datetime | None = None) -> dict:
    at = at or now()
    return {
        "id": deal.pk,
        "sku": deal.variant.sku,
        "title": deal.variant.display_title
        if hasattr(deal.variant, "display_title")
        else deal.variant.sku,
        "price": money_json(deal.deal_price),
        "regular_price": money_json(deal.variant.price),
        "lowest_price_30_days": money_json(deal.lowest_price_30_days),
        "units": deal.units,
        "units_left": deal.left,
        "sold": deal.sold,
        "held": deal.held,
        "state": state_of(deal, at),
        "starts_at": deal.starts_at.isoformat(),
        "ends_at": deal.ends_at.isoformat(),
        "starts_in_seconds": max(0, int((deal.starts_at - at).total_seconds())),
        "limit_per_customer": deal.limit_per_customer,
        "hold_minutes": deal.hold_minutes,
    }
