"""Send-time checks for the order mails: a mail that no longer tells the truth stays unsent.

Mails are rendered and sent by the worker some time after the event. If the order has moved on
meanwhile (cancelled before its confirmation left), the stale mail is suppressed; the mail of
the later event tells the customer what they need to know.
"""

from __future__ import annotations

from warenhaus.orders.models import Order, OrderStatus

from .audience import send_check


def _order_of(message) -> Order | None:
    ref = message.related_object or ""
    if not ref.startswith("order:"):
        return None
    return Order.objects.filter(number=ref.removeprefix("order:")).only("status", "email").first()


def confirmation_still_true(message) -> str | None:
    order = _order_of(message)
    if order is None:
        return "the order no longer exists"
    if order.status == OrderStatus.CANCELLED:
        return "the order was cancelled before its confirmation left; the cancellation mail tells the customer"
    return None


def shipment_still_true(message) -> str | None:
    order = _order_of(message)
    if order is None:
        return "the order no longer exists"
    if order.status not in {OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.REFUNDED}:
        return f"the order is {order.status}, not shipped"
    return None


def register() -> None:
    send_check("order_confirmation")(confirmation_still_true)
    send_check("order_shipped")(shipment_still_true)
