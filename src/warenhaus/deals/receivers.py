"""How flash deals react to what happens to orders."""

from warenhaus.orders import events as order_events

from .services.sales import convert_holds, on_orders_cancelled


def convert_holds_of_placed_order(
    *, orders, held, user, email, shipping_address, payment_fingerprint, **event
):
    """The order took the held deal units: its holds become the deal's sales. Connected last
    among the receivers of ``order_placed``, so the deal's row is locked only until the commit."""
    if not held:
        return
    (order,) = orders
    settle = convert_holds(
        order=order,
        hold_ids=list(held.values()),
        email=email,
        user_id=getattr(user, "pk", None),
        shipping_address=shipping_address,
        payment_fingerprint=payment_fingerprint,
    )
    settle()


def return_units_of_cancelled_orders(*, orders, **event):
    """Flash-deal units of cancelled orders go back to their deal while it runs."""
    on_orders_cancelled([o.pk for o in orders])


def restore_holds_of_failed_order(*, orders, **event):
    """The order's payment failed: its converted holds are live again, as before the checkout
    (units held for the shopper, stock allocated to the deal again after the order released
    it, the household's count given back, a wait-list offer open again)."""
    from django.db.models import F

    from warenhaus.inventory import services as inventory

    from .cache import cache
    from .models import Deal, Hold, HoldSource, HoldStatus, Sale, WaitlistEntry, WaitlistStatus
    from .services.household import uncount_household

    sales = list(
        Sale.objects.select_for_update(of=("self",))
        .filter(order_id__in=[o.pk for o in orders])
        .select_related("deal", "hold")
        .order_by("deal_id", "pk")
    )
    for sale in sales:
        inventory.allocate(variant_id=sale.deal.variant_id, quantity=sale.quantity)
        uncount_household(sale.deal_id, sale.keys, sale.quantity)
        Hold.objects.filter(pk=sale.hold_id).update(
            status=HoldStatus.ACTIVE, ended_at=None, order=None
        )
        if sale.hold.source == HoldSource.WAITLIST:
            WaitlistEntry.objects.filter(deal_id=sale.deal_id, token=sale.hold.ticket).update(
                status=WaitlistStatus.OFFERED
            )
        sale.delete()
        Deal.objects.filter(pk=sale.deal_id).update(
            sold=F("sold") - sale.quantity, held=F("held") + sale.quantity
        )
        cache.forget_deal(sale.deal_id)


def connect() -> None:
    order_events.order_payment_failed.connect(
        restore_holds_of_failed_order, dispatch_uid="deals.restore_holds_of_failed_order"
    )
    order_events.order_placed.connect(
        convert_holds_of_placed_order, dispatch_uid="deals.convert_holds_of_placed_order"
    )
    order_events.order_cancelled.connect(
        return_units_of_cancelled_orders, dispatch_uid="deals.return_units_of_cancelled_orders"
    )
