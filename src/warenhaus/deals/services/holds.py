"""Holds: units of a deal reserved for one turn, in that shopper's cart at the deal price,
until a deadline.

A hold is taken in the same transaction as its units (``held`` on the deal's row, a
conditional UPDATE). Its cart line is checkout's (:mod:`warenhaus.checkout.held_lines`); the
hold remembers how many regular units of the same item its line took the place of, so the cart
can say so. Checkout converts a live hold without a stock or price check: the hold guarantees
both until its deadline. How a hold ends is :mod:`.admission`'s (:func:`~.admission.release_hold`).
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import F

from warenhaus.checkout import held_lines
from warenhaus.core.clock import now

from ..models import Deal, Hold, HoldStatus
from .household import user_id_of


def take_units(deal_id: int, quantity: int) -> bool:
    """Hold ``quantity`` free units of the deal, or none (False)."""
    return (
        Deal.objects.filter(
            pk=deal_id, sold__lte=F("units") - F("held") - F("released_units") - quantity
        ).update(held=F("held") + quantity)
        == 1
    )


def take_up_to(deal_id: int, quantity: int) -> int:
    """Hold as many of ``quantity`` units as are free (the last unit goes to the next person
    even if they asked for two): how many were taken, 0 if none is free."""
    for q in range(quantity, 0, -1):
        if take_units(deal_id, q):
            return q
    return 0


def carts_for(tickets: list) -> dict[str, str]:
    """The cart each ticket's held units go into (ticket id -> cart id): the one the shopper
    named when queueing if it is still open and theirs, else their open cart, else a new one;
    never one cart for two tickets."""
    return held_lines.carts_for(
        [(t.id, (t.data or {}).get("cart_id") or "", user_id_of(t.who)) for t in tickets]
    )


def put_in_carts(deal: Deal, rows: list[tuple[str, int, int]]) -> None:
    """Put held units into carts (``(cart_id, quantity, hold_id)``) as lines at the deal price
    that name their hold (a regular line of the same item in the cart becomes the held one, and
    the hold remembers how many regular units it took the place of: the cart says so)."""
    replaced = held_lines.put_held_lines(
        variant_id=deal.variant_id, price=deal.deal_price, rows=rows
    )
    # a line whose hold has ended is a regular line now (at the regular price)
    active = set(
        Hold.objects.filter(
            pk__in=[before for _, _, before in replaced if before], status=HoldStatus.ACTIVE
        ).values_list("pk", flat=True)
    )
    for hold_id, quantity, before in replaced:
        if before not in active:  # nothing disappears silently: the cart names what gave way
            Hold.objects.filter(pk=hold_id).update(replaced_quantity=quantity)


def holds_by_id(hold_ids) -> dict[int, dict]:
    """For the cart: each hold's state, price and deadline (one query)."""
    rows = Hold.objects.filter(pk__in=list(hold_ids)).values(
        "pk", "status", "expires_at", "quantity", "deal__deal_price", "deal_id", "replaced_quantity"
    )
    return {r["pk"]: r for r in rows}


def hold_is_live(row: dict, at: datetime | None = None) -> bool:
    return row["status"] == HoldStatus.ACTIVE and row["expires_at"] > (at or now())


def past_deadline(hold: dict, at: datetime) -> bool:
    """Whether an active hold's deadline has passed (before the sweep ends it)."""
    return hold["status"] == HoldStatus.ACTIVE and hold["expires_at"] <= at


#: the hold's fields a shopper's poll shows
HOLD_FIELDS = ("cart_id", "quantity", "expires_at", "status")


def hold_json(hold: dict, at: datetime) -> dict:
    """A hold (``HOLD_FIELDS``) as a shopper's poll shows it: expired once past its deadline."""
    return {
        "quantity": hold["quantity"],
        "expires_at": hold["expires_at"].isoformat(),
        "status": HoldStatus.EXPIRED.value if past_deadline(hold, at) else hold["status"],
    }
