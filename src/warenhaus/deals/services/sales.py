"""Held units and checkout: what the cart asks about its held lines, a placed order turning
holds into sales (counted against the household), and a cancelled order giving them back.

Checkout sits below deals: it asks through its port (:mod:`warenhaus.checkout.holds`, answered
by :class:`CartHolds`, registered in ``DealsConfig.ready()``), and the order's placement and
cancellation reach deals as events (:mod:`warenhaus.deals.receivers`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.db.models import F

from warenhaus.core.clock import now
from warenhaus.core.errors import Conflict
from warenhaus.inventory import services as inventory

from ..cache import cache
from ..models import (
    Deal,
    DealState,
    Hold,
    HoldSource,
    HoldStatus,
    Sale,
    WaitlistEntry,
    WaitlistStatus,
)
from .admission import release_hold, units_returned
from .holds import hold_is_live, holds_by_id
from .household import buyer_keys, count_household, uncount_household
from .setup import state_of


class CartHolds:
    """Checkout's questions about held lines (:class:`warenhaus.checkout.holds.Holds`)."""

    def read(self, hold_ids: list[int]) -> dict[int, dict]:
        at = now()
        return {
            pk: {
                "live": hold_is_live(r, at),
                "price": r["deal__deal_price"],
                "quantity": r["quantity"],
                "expires_at": r["expires_at"],
                "replaced_quantity": r["replaced_quantity"],
            }
            for pk, r in holds_by_id(hold_ids).items()
        }

    def release(self, hold_id: int) -> bool:
        return release_hold(hold_id=hold_id)

    def move(self, hold_id: int, *, cart_id: str, replaced: int) -> None:
        Hold.objects.filter(pk=hold_id).update(
            cart_id=cart_id, replaced_quantity=F("replaced_quantity") + replaced
        )

    def add_replaced(self, hold_id: int, quantity: int) -> None:
        Hold.objects.filter(pk=hold_id).update(replaced_quantity=F("replaced_quantity") + quantity)


def _limit_reasons(limit: int) -> dict[str, str]:
    """Why a household key refuses more units, per kind of key."""
    return {
        "payment": (f"This card was already used for this deal (at most {limit} per household)."),
        "address": (
            f"Another order of this deal goes to the same address (at most {limit} per household)."
        ),
        "user": f"You already have {limit} of this deal (at most {limit} per customer).",
        "email": (
            f"This e-mail address already has {limit} of this deal (at most {limit} per customer)."
        ),
    }


def convert_holds(
    *,
    order,
    hold_ids: list[int],
    email: str,
    user_id,
    shipping_address: dict,
    payment_fingerprint: str = "",
) -> Callable[[], None]:
    """Inside the checkout's transaction: the held units become sold, counted against the
    household: the customer, the shipping address and the payment instrument (the gateway's
    fingerprint of the card, when the method has one). Refuses ``hold_expired`` if a hold ran
    out meanwhile, and ``limit_per_customer`` (with the reason) if the household has had its
    share.

    Returns what the caller runs as the transaction's last step: moving the units from ``held``
    to ``sold`` on the deal's row. That row is every buyer's; its lock lasts from the update to
    the commit, so the update comes when nothing else is left to do (holding it through the
    rest of the order serialises the checkouts). The hold is locked and converted already, so
    nobody else can move those units meanwhile."""
    at = now()
    settle: dict[int, int] = {}
    for hold_id in sorted(hold_ids):
        # the hold only: locking the deal row too (FOR UPDATE) would stop every join and poll that
        # writes a row pointing at the deal until the checkout commits
        hold = Hold.objects.select_for_update(of=("self",)).select_related("deal").get(pk=hold_id)
        if not hold_is_live({"status": hold.status, "expires_at": hold.expires_at}, at):
            raise Conflict(
                "The deal price was held for you until its deadline, which has passed.",
                code="hold_expired",
                expired_at=hold.expires_at.isoformat(),
            )
        keys = buyer_keys(
            who=hold.who,
            user_id=user_id,
            email=email,
            address=shipping_address,
            fingerprint=payment_fingerprint,
        )
        count_household(
            hold.deal, keys, hold.quantity, why=_limit_reasons(hold.deal.limit_per_customer)
        )
        Hold.objects.filter(pk=hold.pk).update(
            status=HoldStatus.CONVERTED, ended_at=at, order=order
        )
        settle[hold.deal_id] = settle.get(hold.deal_id, 0) + hold.quantity
        Sale.objects.create(
            deal_id=hold.deal_id,
            order=order,
            hold=hold,
            quantity=hold.quantity,
            keys=sorted(set(keys)),
            created_at=at,
        )
        if hold.source == HoldSource.WAITLIST:
            WaitlistEntry.objects.filter(deal_id=hold.deal_id, token=hold.ticket).update(
                status=WaitlistStatus.BOUGHT
            )
        cache.forget_deal(hold.deal_id)

    def settle_counters() -> None:
        for deal_id, quantity in sorted(settle.items()):
            n = Deal.objects.filter(pk=deal_id, held__gte=quantity).update(
                held=F("held") - quantity, sold=F("sold") + quantity
            )
            if n != 1:
                raise RuntimeError(f"a converted hold's units were not held (deal {deal_id})")

    return settle_counters


def on_orders_cancelled(order_ids, *, at: datetime | None = None) -> int:
    """Inside the cancellation's transaction, after the order's stock was released: units of a
    live deal go back into its contingent (allocated again) for the next person; after the end
    they stay with regular stock. The household may buy again."""
    sales = list(
        Sale.objects.select_for_update(of=("self",))
        .filter(order_id__in=list(order_ids), returned_at__isnull=True)
        .select_related("deal")
    )
    at = at or now()
    live_deals = set()
    for sale in sales:
        deal = sale.deal
        if state_of(deal, at) in (DealState.LIVE, DealState.SOLD_OUT):
            inventory.allocate(variant_id=deal.variant_id, quantity=sale.quantity)
            Deal.objects.filter(pk=deal.pk).update(sold=F("sold") - sale.quantity)
            live_deals.add(deal.pk)
        else:
            Deal.objects.filter(pk=deal.pk).update(
                sold=F("sold") - sale.quantity, released_units=F("released_units") + sale.quantity
            )
        uncount_household(deal.pk, sale.keys, sale.quantity)
        Sale.objects.filter(pk=sale.pk).update(returned_at=at)
    for sale in sales:
        cache.forget_deal(sale.deal_id)
    for deal_id in live_deals:
        units_returned(deal_id, at=at)
    return len(sales)
