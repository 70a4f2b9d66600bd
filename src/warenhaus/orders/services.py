"""The order's state machine and the actions staff take on orders.

Allowed transitions are one table (``TRANSITIONS``); every change goes through
:func:`transition`, which refuses anything else with 409 ``invalid_transition`` and records an
:class:`OrderEvent`. Cancelling releases the allocated stock and gives back the money.
"""

from __future__ import annotations

import secrets

from django.db import transaction

from warenhaus.core import audit
from warenhaus.core.clock import now
from warenhaus.core.errors import Conflict, NotFound, ValidationFailed
from warenhaus.inventory import services as inventory

from .models import Order, OrderEvent, OrderLine, OrderStatus, Payment

S = OrderStatus
TRANSITIONS: dict[str, set[str]] = {
    S.PLACED: {S.PAID, S.AWAITING_PAYMENT, S.ON_HOLD, S.CANCELLED},
    S.AWAITING_PAYMENT: {S.PAID, S.ON_HOLD, S.SHIPPED, S.CANCELLED},
    S.PAID: {S.ON_HOLD, S.SHIPPED, S.CANCELLED, S.REFUNDED},
    S.ON_HOLD: {S.PLACED, S.PAID, S.AWAITING_PAYMENT, S.CANCELLED},
    S.SHIPPED: {S.DELIVERED, S.REFUNDED},
    S.DELIVERED: {S.REFUNDED},
    S.CANCELLED: set(),
    S.REFUNDED: set(),
}
#: statuses in which the goods have not left the warehouse
UNSHIPPED = {S.PLACED, S.AWAITING_PAYMENT, S.PAID, S.ON_HOLD}

NUMBER_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def new_order_number() -> str:
    return "WH-" + "".join(secrets.choice(NUMBER_ALPHABET) for _ in range(8))


def transition(order: Order, to_status: str, *, actor=None, reason: str = "") -> Order:
    """Move a locked order to ``to_status`` or refuse. Call inside a transaction."""
    if to_status not in TRANSITIONS.get(order.status, set()):
        raise Conflict(
            f"An order that is {order.get_status_display()} cannot become {OrderStatus(to_status).label}.",
            code="invalid_transition",
            current_status=order.status,
        )
    OrderEvent.objects.create(order=order, at=now(), from_status=order.status, to_status=to_status, actor=actor if getattr(actor, "pk", None) else None, reason=reason)
    order.status = to_status
    order.save(update_fields=["status", "held_from"])
    return order


def record_placed_order(*, number: str, status: str, status_reason: str, lines: list[dict], payment: dict, **fields) -> Order:
    """Write a just-placed order in its final state: the order, its lines, the two events
    (placed, then paid or awaiting payment) and its payment. The caller (checkout) has already
    allocated the stock and authorised the payment, inside the same transaction. The created
    rows are attached to the order (as a prefetch cache) so that answering with it costs no
    queries; like any prefetch, that snapshot does not follow later changes: re-read the order
    after acting on it."""
    order = Order.objects.create(number=number, status=status, **fields)
    order_lines = OrderLine.objects.bulk_create([OrderLine(order=order, **line) for line in lines])
    events = OrderEvent.objects.bulk_create([
        OrderEvent(order=order, at=order.placed_at, from_status="", to_status=S.PLACED, reason="order placed"),
        OrderEvent(order=order, at=order.placed_at, from_status=S.PLACED, to_status=status, reason=status_reason),
    ])
    pay = Payment.objects.create(order=order, **payment)
    order._prefetched_objects_cache = {
        "lines": _filled(order.lines.all(), order_lines),
        "events": _filled(order.events.all(), events),
        "payments": _filled(order.payments.all(), [pay]),
    }
    return order


def _filled(queryset, rows):
    """A queryset that already holds ``rows``, as prefetch_related leaves it: iterating costs
    nothing, and chaining (``order_by``, ``filter``) still works and queries afresh."""
    queryset._result_cache = list(rows)
    queryset._prefetch_done = True
    return queryset


def _locked(number: str) -> Order:
    order = Order.objects.select_for_update().filter(number=number).first()
    if order is None:
        raise NotFound(f"No order {number}.", code="order_not_found")
    return order


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Please give a reason; it goes into the order history and the audit trail.", code="reason_required")
    return reason[:2000]


def cancel(*, number: str, actor, reason: str, customer_note: str = "", source: str = "api") -> Order:
    """Cancel an order that has not shipped. ``reason`` is internal (history and audit trail);
    the customer's mail shows only ``customer_note``, so "suspected fraud" never reaches them."""
    reason = _reason(reason)
    with transaction.atomic():
        order = _locked(number)
        before = order.status
        if order.status not in UNSHIPPED:
            raise Conflict(f"Order {number} has already left the warehouse ({order.get_status_display()}); it can be refunded, not cancelled.", code="invalid_transition", current_status=order.status)
        order.held_from = ""
        transition(order, S.CANCELLED, actor=actor, reason=reason)
        for line in order.lines.all().order_by("variant_id"):
            inventory.release(variant_id=line.variant_id, quantity=line.quantity)
        _give_money_back(order)
        from warenhaus.promotions.services import release_for_order

        release_for_order(order=order)
        audit.record(actor=actor, action="order.cancel", obj=order, before={"status": before}, after={"status": order.status}, reason=reason, source=source)
        from warenhaus.notifications.services import enqueue_mail

        enqueue_mail(kind="order_cancelled", to_email=order.email, template="order_cancelled", context={"order": order, "customer_note": (customer_note or "").strip()[:2000]}, language=order.language, dedupe_key=f"order_cancelled:{order.number}", related_object=f"order:{order.number}")
    return order


def _give_money_back(order: Order) -> None:
    from warenhaus.checkout.payments import gateway

    for payment in Payment.objects.select_for_update().filter(order=order, status__in=["authorized", "captured", "pending"]):
        gw = gateway(payment.gateway, for_new_payment=False)
        if payment.status == "authorized":
            gw.void(reference=payment.reference)
            payment.status = "voided"
        elif payment.status == "captured":
            gw.refund(reference=payment.reference, amount=payment.amount - payment.refunded_amount)
            payment.refunded_amount = payment.amount
            payment.status = "refunded"
        else:  # an invoice not yet paid: nothing to give back
            payment.status = "voided"
        payment.save(update_fields=["status", "refunded_amount"])


def hold(*, number: str, actor, reason: str, source: str = "api") -> Order:
    reason = _reason(reason)
    with transaction.atomic():
        order = _locked(number)
        before = order.status
        if order.status == S.ON_HOLD:
            return order
        if S.ON_HOLD not in TRANSITIONS[order.status]:
            raise Conflict(f"An order that is {order.get_status_display()} cannot be held.", code="invalid_transition", current_status=order.status)
        order.held_from = order.status
        transition(order, S.ON_HOLD, actor=actor, reason=reason)
        audit.record(actor=actor, action="order.hold", obj=order, before={"status": before}, after={"status": order.status}, reason=reason, source=source)
    return order


def release(*, number: str, actor, reason: str = "", source: str = "api") -> Order:
    with transaction.atomic():
        order = _locked(number)
        if order.status != S.ON_HOLD:
            raise Conflict("Only an order on hold can be released.", code="invalid_transition", current_status=order.status)
        back_to = order.held_from or S.PLACED
        order.held_from = ""
        transition(order, back_to, actor=actor, reason=reason or "released")
        audit.record(actor=actor, action="order.release", obj=order, before={"status": S.ON_HOLD}, after={"status": order.status}, reason=reason, source=source)
    return order


def ship(*, number: str, actor, reason: str = "", source: str = "api") -> Order:
    with transaction.atomic():
        order = _locked(number)
        before = order.status
        transition(order, S.SHIPPED, actor=actor, reason=reason or "shipped")
        for line in order.lines.all().order_by("variant_id"):
            inventory.ship(variant_id=line.variant_id, quantity=line.quantity)
        Payment.objects.filter(order=order, status="authorized").update(status="captured")
        audit.record(actor=actor, action="order.ship", obj=order, before={"status": before}, after={"status": order.status}, reason=reason, source=source)
        from warenhaus.notifications.services import enqueue_mail

        enqueue_mail(kind="order_shipped", to_email=order.email, template="order_shipped", context={"order": order}, language=order.language, dedupe_key=f"order_shipped:{order.number}", related_object=f"order:{order.number}")
    return order


def mark_delivered(*, number: str, actor, source: str = "api") -> Order:
    with transaction.atomic():
        order = _locked(number)
        before = order.status
        transition(order, S.DELIVERED, actor=actor, reason="delivered")
        audit.record(actor=actor, action="order.deliver", obj=order, before={"status": before}, after={"status": order.status}, source=source)
    return order


def mark_paid(*, number: str, actor, source: str = "api") -> Order:
    """An invoice was paid (booked by support or, later, by a bank import)."""
    with transaction.atomic():
        order = _locked(number)
        before = order.status
        if order.status == S.SHIPPED or order.status == S.DELIVERED:
            Payment.objects.filter(order=order, status="pending").update(status="captured")
        elif order.status == S.ON_HOLD:
            # Money arriving does not lift a hold: the order stays held and, when released,
            # returns to "paid".
            Payment.objects.filter(order=order, status="pending").update(status="captured")
            order.held_from = S.PAID
            order.save(update_fields=["held_from"])
        else:
            transition(order, S.PAID, actor=actor, reason="payment received")
            Payment.objects.filter(order=order, status="pending").update(status="captured")
        audit.record(actor=actor, action="order.mark_paid", obj=order, before={"status": before}, after={"status": order.status}, source=source)
    return order
