"""The mails that tell customers what happened to their orders (written to the outbox inside
the order's transaction; delivered by the worker after the commit)."""

from warenhaus.orders import events as order_events


def _order_mail(kind: str, order, **context) -> None:
    from .services import enqueue_mail

    enqueue_mail(
        kind=kind,
        to_email=order.email,
        template=kind,
        context={"order": order, **context},
        language=order.language,
        dedupe_key=f"{kind}:{order.number}",
        related_object=f"order:{order.number}",
    )


def confirm_placed_order(*, orders, **event):
    for order in orders:
        _order_mail("order_confirmation", order, lines=list(order.lines.all()))


def tell_cancelled_orders(*, orders, mail=True, customer_note="", **event):
    """Only ``customer_note`` reaches the customer, never the internal reason."""
    if not mail:
        return
    note = (customer_note or "").strip()[:2000]
    for order in orders:
        _order_mail("order_cancelled", order, customer_note=note)


def tell_shipped_orders(*, orders, **event):
    for order in orders:
        _order_mail("order_shipped", order)


def connect() -> None:
    order_events.order_confirmed.connect(
        confirm_placed_order, dispatch_uid="notifications.confirm_placed_order"
    )
    order_events.order_cancelled.connect(
        tell_cancelled_orders, dispatch_uid="notifications.tell_cancelled_orders"
    )
    order_events.order_shipped.connect(
        tell_shipped_orders, dispatch_uid="notifications.tell_shipped_orders"
    )
