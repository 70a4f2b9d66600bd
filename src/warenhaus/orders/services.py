"""The order's state machine and the actions staff take on orders.

Allowed transitions are one table (``TRANSITIONS``); every change goes through
:func:`transition`, which refuses anything else with 409 ``invalid_transition`` and records an
:class:`OrderEvent`. Cancelling releases the allocated stock and gives back the money.
"""

from __future__ import annotations

import logging
import secrets

from django.db import transaction
from django.db.models import F, Sum

from warenhaus.core import audit, parsing
from warenhaus.core.clock import now
from warenhaus.core.errors import Conflict, NotFound
from warenhaus.inventory import services as inventory

from . import events
from .models import Order, OrderEvent, OrderLine, OrderStatus, Payment, PaymentAction

S = OrderStatus
log = logging.getLogger("warenhaus.orders")
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
    OrderEvent.objects.create(
        order=order,
        at=now(),
        from_status=order.status,
        to_status=to_status,
        actor=actor if getattr(actor, "pk", None) else None,
        reason=reason,
    )
    order.status = to_status
    order.save(update_fields=["status", "held_from"])
    return order


def record_placed_order(
    *, number: str, status: str, status_reason: str, lines: list[dict], payment: dict, **fields
) -> Order:
    """Write a just-placed order in its final state: the order, its lines, the two events
    (placed, then paid or awaiting payment) and its payment. The caller (checkout) has already
    allocated the stock and authorised the payment, inside the same transaction. The created
    rows are attached to the order (as a prefetch cache) so that answering with it costs no
    queries; like any prefetch, that snapshot does not follow later changes: re-read the order
    after acting on it."""
    order = Order.objects.create(number=number, status=status, **fields)
    order_lines = OrderLine.objects.bulk_create([OrderLine(order=order, **line) for line in lines])
    history = OrderEvent.objects.bulk_create(
        [
            OrderEvent(
                order=order,
                at=order.placed_at,
                from_status="",
                to_status=S.PLACED,
                reason="order placed",
            ),
            OrderEvent(
                order=order,
                at=order.placed_at,
                from_status=S.PLACED,
                to_status=status,
                reason=status_reason,
            ),
        ]
    )
    pay = Payment.objects.create(order=order, **payment)
    order._prefetched_objects_cache = {
        "lines": _filled(order.lines.all(), order_lines),
        "events": _filled(order.events.all(), history),
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
    detail = "Please give a reason; it goes into the order history and the audit trail."
    return parsing.reason(reason, detail=detail)


def cancel(
    *, number: str, actor, reason: str, customer_note: str = "", source: str = "api"
) -> Order:
    """Cancel an order that has not shipped. ``reason`` is internal (history and audit trail);
    the customer's mail shows only ``customer_note``, so "suspected fraud" never reaches them."""
    reason = _reason(reason)
    with transaction.atomic():
        order = _locked(number)
        if order.status not in UNSHIPPED:
            raise Conflict(
                f"Order {number} has already left the warehouse ({order.get_status_display()}); it can be refunded, not cancelled.",
                code="invalid_transition",
                current_status=order.status,
            )
        _cancel_locked(
            [order], actor=actor, reason=reason, customer_note=customer_note, source=source
        )
    return order


def hold(*, number: str, actor, reason: str, source: str = "api") -> Order:
    reason = _reason(reason)
    with transaction.atomic():
        order = _locked(number)
        if order.status == S.ON_HOLD:
            return order
        if S.ON_HOLD not in TRANSITIONS[order.status]:
            raise Conflict(
                f"An order that is {order.get_status_display()} cannot be held.",
                code="invalid_transition",
                current_status=order.status,
            )
        _hold_locked([order], actor=actor, reason=reason, source=source)
    return order


def act_on_many(
    order_ids,
    *,
    action: str,
    actor,
    reason: str,
    source: str = "remediation",
    mail_customers: bool = True,
) -> dict[int, str]:
    """Cancel (``action="cancel"``) or hold (``"hold"``) many orders at once, in the caller's
    transaction, each exactly as :func:`cancel` or :func:`hold` would: events, stock, money,
    vouchers, audit entries, and (``mail_customers``) the cancellation mail. Orders that cannot
    take the action are left alone. Returns, per order id, ``"cancelled"``, ``"held"``,
    ``"shipped"`` (out of reach) or ``"unchanged"`` (already cancelled, refunded or held).

    A fixed number of statements per call, whatever the number of orders (the remediation of
    tens of thousands of orders works them off in chunks of a few hundred)."""
    reason = _reason(reason)
    orders = list(Order.objects.select_for_update().filter(pk__in=list(order_ids)).order_by("pk"))
    result: dict[int, str] = {}
    target = S.CANCELLED if action == "cancel" else S.ON_HOLD
    todo = []
    for o in orders:
        if target in TRANSITIONS.get(o.status, set()) and o.status in UNSHIPPED:
            todo.append(o)
        elif o.status in (S.SHIPPED, S.DELIVERED):
            result[o.pk] = "shipped"
        else:
            result[o.pk] = "unchanged"
    if todo:
        if action == "cancel":
            _cancel_locked(todo, actor=actor, reason=reason, source=source, mail=mail_customers)
        else:
            _hold_locked(todo, actor=actor, reason=reason, source=source)
    for o in todo:
        result[o.pk] = "cancelled" if action == "cancel" else "held"
    return result


def _events(orders: list[Order], to_status: str, *, actor, reason: str) -> None:
    at = now()
    who = actor if getattr(actor, "pk", None) else None
    OrderEvent.objects.bulk_create(
        [
            OrderEvent(
                order=o, at=at, from_status=o.status, to_status=to_status, actor=who, reason=reason
            )
            for o in orders
        ]
    )


def _cancel_locked(
    orders: list[Order],
    *,
    actor,
    reason: str,
    source: str,
    customer_note: str = "",
    mail: bool = True,
) -> None:
    """Cancel locked, unshipped orders: release their stock, give the money back, release their
    vouchers, write history and audit trail, and (``mail``) tell each customer."""
    ids = [o.pk for o in orders]
    before = {o.pk: o.status for o in orders}
    _events(orders, S.CANCELLED, actor=actor, reason=reason)
    Order.objects.filter(pk__in=ids).update(status=S.CANCELLED, held_from="")
    for o in orders:
        o.status, o.held_from = S.CANCELLED, ""
    lines = (
        OrderLine.objects.filter(order_id__in=ids)
        .values("variant_id")
        .annotate(quantity=Sum("quantity"))
        .order_by("variant_id")
    )
    for line in lines:
        inventory.release(variant_id=line["variant_id"], quantity=line["quantity"])
    _give_money_back(ids)
    audit.record_many(
        [
            audit.entry(
                actor=actor,
                action="order.cancel",
                obj=o,
                before={"status": before[o.pk]},
                after={"status": o.status},
                reason=reason,
                source=source,
            )
            for o in orders
        ]
    )
    events.order_cancelled.send(
        orders=orders,
        actor=actor,
        reason=reason,
        source=source,
        customer_note=customer_note,
        mail=mail,
    )


def _hold_locked(orders: list[Order], *, actor, reason: str, source: str) -> None:
    before = {o.pk: o.status for o in orders}
    _events(orders, S.ON_HOLD, actor=actor, reason=reason)
    for status in sorted(set(before.values())):
        Order.objects.filter(pk__in=[pk for pk, st in before.items() if st == status]).update(
            status=S.ON_HOLD, held_from=status
        )
    for o in orders:
        o.held_from, o.status = o.status, S.ON_HOLD
    audit.record_many(
        [
            audit.entry(
                actor=actor,
                action="order.hold",
                obj=o,
                before={"status": before[o.pk]},
                after={"status": o.status},
                reason=reason,
                source=source,
            )
            for o in orders
        ]
    )
    events.order_held.send(orders=orders, actor=actor, reason=reason, source=source)


def _give_money_back(order_ids: list[int]) -> None:
    """Void what was only authorised, refund what was captured, forget unpaid invoices. The
    payments' records change now; the gateway is asked by the worker once this transaction has
    committed (:class:`PaymentAction`): a cancellation that rolls back never reaches it."""
    payments = list(
        Payment.objects.select_for_update()
        .filter(order_id__in=order_ids, status__in=["authorized", "captured", "pending"])
        .order_by("pk")
    )
    import uuid

    actions = [
        PaymentAction(
            payment=p,
            kind="void" if p.status == "authorized" else "refund",
            amount=p.amount - p.refunded_amount,
            key=f"{'void' if p.status == 'authorized' else 'refund'}:{p.pk}:{uuid.uuid4().hex[:16]}",
        )
        for p in payments
        if p.status in ("authorized", "captured")
    ]
    voided = [
        p.pk for p in payments if p.status in ("authorized", "pending")
    ]  # an unpaid invoice: nothing to give back
    refunded = [p.pk for p in payments if p.status == "captured"]
    if voided:
        Payment.objects.filter(pk__in=voided).update(status="voided")
    if refunded:
        Payment.objects.filter(pk__in=refunded).update(
            status="refunded", refunded_amount=F("amount")
        )
    if actions:
        from warenhaus.core.taskqueue import enqueue_many

        from .tasks import run_payment_action

        PaymentAction.objects.bulk_create(actions)
        enqueue_many(run_payment_action, [([a.pk], str(uuid.uuid4())) for a in actions])


def carry_out_payment_action(action_id: int) -> str:
    """The worker's side of a payment action: ask the gateway once (its idempotency key makes a
    repeat harmless), record the outcome; on failure try again later with growing waits, up to
    ``OUTBOX_MAX_ATTEMPTS`` times, then leave it ``failed`` for a person to look at."""
    from datetime import timedelta

    from django.conf import settings

    from warenhaus.checkout.payments import gateway

    from .tasks import run_payment_action

    with transaction.atomic():
        action = (
            PaymentAction.objects.select_for_update(skip_locked=True)
            .select_related("payment")
            .filter(pk=action_id, status="pending")
            .first()
        )
        if action is None:
            return "not_pending"
        gw = gateway(action.payment.gateway, for_new_payment=False)
        action.attempts += 1
        try:
            if action.kind == "void":
                gw.void(reference=action.payment.reference, idempotency_key=action.key)
            else:
                gw.refund(
                    reference=action.payment.reference,
                    amount=action.amount,
                    idempotency_key=action.key,
                )
        except Exception as err:  # a gateway error: try again later, the key keeps it single
            action.last_error = f"{type(err).__name__}: {err}"[:2000]
            if action.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
                action.status = "failed"
                log.error(
                    "payment action %s (%s of payment %s) failed for good: %s",
                    action.pk,
                    action.kind,
                    action.payment_id,
                    action.last_error,
                )
            else:
                delay = min(
                    settings.OUTBOX_BACKOFF_SECONDS * 2 ** (action.attempts - 1),
                    settings.OUTBOX_BACKOFF_MAX_SECONDS,
                )
                run_payment_action.using(run_after=now() + timedelta(seconds=delay)).enqueue(
                    action.pk
                )
            action.save(update_fields=["attempts", "last_error", "status"])
            return action.status
        action.status, action.done_at, action.last_error = "done", now(), ""
        action.save(update_fields=["attempts", "last_error", "status", "done_at"])
        return "done"


def release(*, number: str, actor, reason: str = "", source: str = "api") -> Order:
    with transaction.atomic():
        order = _locked(number)
        if order.status != S.ON_HOLD:
            raise Conflict(
                "Only an order on hold can be released.",
                code="invalid_transition",
                current_status=order.status,
            )
        back_to = order.held_from or S.PLACED
        order.held_from = ""
        transition(order, back_to, actor=actor, reason=reason or "released")
        audit.record(
            actor=actor,
            action="order.release",
            obj=order,
            before={"status": S.ON_HOLD},
            after={"status": order.status},
            reason=reason,
            source=source,
        )
        events.order_released.send(orders=[order], actor=actor, reason=reason, source=source)
    return order


def ship(*, number: str, actor, reason: str = "", source: str = "api") -> Order:
    with transaction.atomic():
        order = _locked(number)
        before = order.status
        transition(order, S.SHIPPED, actor=actor, reason=reason or "shipped")
        for line in order.lines.all().order_by("variant_id"):
            inventory.ship(variant_id=line.variant_id, quantity=line.quantity)
        Payment.objects.filter(order=order, status="authorized").update(status="captured")
        audit.record(
            actor=actor,
            action="order.ship",
            obj=order,
            before={"status": before},
            after={"status": order.status},
            reason=reason,
            source=source,
        )
        events.order_shipped.send(orders=[order], actor=actor, reason=reason, source=source)
    return order


def mark_delivered(*, number: str, actor, source: str = "api") -> Order:
    with transaction.atomic():
        order = _locked(number)
        before = order.status
        transition(order, S.DELIVERED, actor=actor, reason="delivered")
        audit.record(
            actor=actor,
            action="order.deliver",
            obj=order,
            before={"status": before},
            after={"status": order.status},
            source=source,
        )
        events.order_delivered.send(orders=[order], actor=actor, reason="", source=source)
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
        audit.record(
            actor=actor,
            action="order.mark_paid",
            obj=order,
            before={"status": before},
            after={"status": order.status},
            source=source,
        )
        events.order_paid.send(orders=[order], actor=actor, reason="", source=source)
    return order
