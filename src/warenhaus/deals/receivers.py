"""How flash deals react to what happens to orders."""

from warenhaus.orders import events as order_events


def convert_holds_of_placed_order(*, orders, held, user, email, shipping_address, **event):
    """The order took the held deal units: its holds become the deal's sales. Connected last
    among the receivers of ``order_placed``, so the deal's row is locked only until the commit."""
    if not held:
        return
    from .services import convert_holds

    (order,) = orders
    settle = convert_holds(
        order=order,
        hold_ids=list(held.values()),
        email=email,
        user_id=getattr(user, "pk", None),
        shipping_address=shipping_address,
        payment_fingerprint=event["payment_fingerprint"],
    )
    settle()


def return_units_of_cancelled_orders(*, orders, **event):
    """Flash-deal units of cancelled orders go back to their deal while it runs."""
    from .services import on_orders_cancelled

    on_orders_cancelled([o.pk for o in orders])


def restore_holds_of_failed_order(*, orders, **event):
    """The order's payment failed: its converted holds are live again, as before the checkout
    (units held for the shopper, stock allocated to the deal again after the order released
    it, the household's count given back, a wait-list offer open again)."""
    from django.db.models import F
    from django.db.models.functions import Greatest

    from warenhaus.inventory import services as inventory

    from .models import Deal, Hold, HoldStatus, HouseholdUsage, Sale, WaitlistEntry, WaitlistStatus
    from .services import _forget

    sales = list(
        Sale.objects.select_for_update(of=("self",))
        .filter(order_id__in=[o.pk for o in orders])
        .select_related("deal", "hold")
        .order_by("deal_id", "pk")
    )
    for sale in sales:
        inventory.allocate(variant_id=sale.deal.variant_id, quantity=sale.quantity)
        HouseholdUsage.objects.filter(deal_id=sale.deal_id, key__in=sorted(sale.keys)).update(
            units=Greatest(F("units") - sale.quantity, 0)
        )
        Hold.objects.filter(pk=sale.hold_id).update(
            status=HoldStatus.ACTIVE, ended_at=None, order=None
        )
        if sale.hold.source == "waitlist":
            WaitlistEntry.objects.filter(deal_id=sale.deal_id, token=sale.hold.ticket).update(
                status=WaitlistStatus.OFFERED
            )
        sale.delete()
        Deal.objects.filter(pk=sale.deal_id).update(
            sold=F("sold") - sale.quantity, held=F("held") + sale.quantity
        )
        _forget(sale.deal_id)


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
