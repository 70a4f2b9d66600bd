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


def connect() -> None:
    order_events.order_placed.connect(
        convert_holds_of_placed_order, dispatch_uid="deals.convert_holds_of_placed_order"
    )
    order_events.order_cancelled.connect(
        return_units_of_cancelled_orders, dispatch_uid="deals.return_units_of_cancelled_orders"
    )
