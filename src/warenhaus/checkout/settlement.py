"""Settling checkouts that died while the card was being asked (the worker's periodic job).

A checkout reserves, commits, asks the gateway, then confirms or compensates. If its process is
killed in between, the order stays ``authorizing`` with its stock reserved. :func:`settle_stuck`
takes each such order older than ``PAYMENT_AUTHORIZATION_TIMEOUT`` seconds and asks the gateway
under the order's idempotency key whether an authorisation exists: yes, the order is confirmed
(as the checkout would have); no, it is compensated (nothing was charged). The Idempotency-Key
record of the checkout then gets its answer, or is removed so the shopper may try again.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings

from warenhaus.core import idempotency
from warenhaus.core.clock import now
from warenhaus.orders.models import Order, OrderStatus
from warenhaus.orders.selectors import order_json
from warenhaus.payments.states import PaymentStatus

from .payments import gateway
from .services import authorization_key, compensate, confirm

log = logging.getLogger("warenhaus.checkout")

#: how long a checkout may take to hear from the card before the worker settles it
DEFAULT_TIMEOUT_SECONDS = 120


def timeout() -> timedelta:
    return timedelta(
        seconds=getattr(settings, "PAYMENT_AUTHORIZATION_TIMEOUT", DEFAULT_TIMEOUT_SECONDS)
    )


def settle_stuck(*, older_than: timedelta | None = None, limit: int = 100) -> dict[str, str]:
    """Confirm or compensate orders stuck in ``authorizing``. Returns number -> "confirmed",
    "compensated" or "left" (someone else settled it, or the void failed: next round)."""
    cutoff = now() - (older_than if older_than is not None else timeout())
    stuck = list(
        Order.objects.filter(status=OrderStatus.AUTHORIZING, placed_at__lt=cutoff)
        .order_by("placed_at", "pk")
        .values_list("number", "payment_method", "total")[:limit]
    )
    done: dict[str, str] = {}
    for number, method, total in stuck:
        done[number] = settle(number, method=method, total=total)
    return done


def settle(number: str, *, method: str, total) -> str:
    gw = gateway(method, for_new_payment=False)
    auth = gw.find_authorization(idempotency_key=authorization_key(number))
    records = idempotency.pending_records(order=number)
    if auth is not None and auth.status in (PaymentStatus.AUTHORIZED, PaymentStatus.PENDING):

        def answer(order):
            idempotency.finish_pending(records, status_code=201, body=order_json(order))

        order = confirm(number, gw=gw, auth=auth, amount=total, on_confirm=answer)
        outcome = "confirmed" if order is not None else "left"
    else:
        # no look-up: a checkout still alive may authorise now; it then finds the order gone
        # and voids its own authorisation
        order = compensate(number, gw=gw, reason="payment_not_confirmed", look_up=False)
        if order is not None:
            idempotency.forget_pending(records)
        outcome = "compensated" if order is not None else "left"
    log.warning("checkout of %s settled by the worker: %s", number, outcome)
    return outcome
