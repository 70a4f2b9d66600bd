"""Allocating, releasing and shipping stock, each a single conditional UPDATE.

Callers that allocate several variants must do so in ascending variant id order (the checkout
does), so two orders racing for the same items lock rows in the same order and cannot deadlock.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F

from warenhaus.core import audit
from warenhaus.core.errors import Conflict, ValidationFailed

from .models import Stock


class OutOfStock(Conflict):
    code = "out_of_stock"
    title = "Not enough stock"


def allocate(*, variant_id: int, quantity: int, sku: str = "") -> None:
    updated = Stock.objects.filter(
        variant_id=variant_id, on_hand__gte=F("allocated") + quantity
    ).update(allocated=F("allocated") + quantity)
    if updated != 1:
        available = (
            Stock.objects.filter(variant_id=variant_id).values_list("on_hand", "allocated").first()
        )
        left = max(0, available[0] - available[1]) if available else 0
        raise OutOfStock(
            f"Only {left} of {sku or 'this item'} left; {quantity} requested.",
            sku=sku,
            available=left,
        )


def release(*, variant_id: int, quantity: int) -> None:
    """Units promised to orders are free again. Never below zero: if the records have drifted
    (fewer allocated than released), what there is is released rather than nothing."""
    from django.db.models import Value
    from django.db.models.functions import Greatest

    Stock.objects.filter(variant_id=variant_id).update(
        allocated=Greatest(F("allocated") - quantity, Value(0))
    )


def ship(*, variant_id: int, quantity: int) -> None:
    """Units leave the warehouse: both what is on hand and what is allocated go down."""
    updated = Stock.objects.filter(
        variant_id=variant_id, allocated__gte=quantity, on_hand__gte=quantity
    ).update(allocated=F("allocated") - quantity, on_hand=F("on_hand") - quantity)
    if updated != 1:
        raise Conflict("Stock records do not cover this shipment.", code="stock_inconsistent")


def set_on_hand(*, variant, on_hand: int, actor, reason: str = "", source: str = "api") -> Stock:
    if (
        isinstance(on_hand, bool)
        or not isinstance(on_hand, int)
        or on_hand < 0
        or on_hand > 10_000_000
    ):
        raise ValidationFailed(
            "on_hand must be a whole number between 0 and 10,000,000.", code="invalid_quantity"
        )
    with transaction.atomic():
        stock, _ = Stock.objects.select_for_update().get_or_create(variant=variant)
        before = {"on_hand": stock.on_hand, "allocated": stock.allocated}
        if on_hand < stock.allocated:
            raise Conflict(
                f"{stock.allocated} units are allocated to open orders; on hand cannot go below that.",
                code="stock_below_allocated",
                allocated=stock.allocated,
            )
        stock.on_hand = on_hand
        stock.save(update_fields=["on_hand", "updated_at"])
        audit.record(
            actor=actor,
            action="stock.set",
            object_type="catalog.variant",
            object_id=variant.sku,
            before=before,
            after={"on_hand": on_hand, "allocated": stock.allocated},
            reason=reason,
            source=source,
        )
    return stock
