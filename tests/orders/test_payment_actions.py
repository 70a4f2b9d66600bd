"""Money goes back through payment actions: written with the cancellation, carried out by the
worker after it committed, once, with the action's idempotency key; retried with backoff when
the gateway fails; never when the cancellation rolled back."""

from __future__ import annotations

import pytest
from django.db import transaction

from tests.notifications.conftest import run_worker
from warenhaus.checkout.payments import TestCardGateway
from warenhaus.orders import services
from warenhaus.orders.models import Payment, PaymentAction

pytestmark = pytest.mark.django_db


@pytest.fixture
def card_order(make_product, address):
    from warenhaus.checkout import services as checkout

    def make():
        v = make_product(price="49.97").variants.get()
        cart, _ = checkout.create_cart()
        checkout.add_line(cart_id=cart.id, sku=v.sku, quantity=1)
        return checkout.place_order(
            cart_id=cart.id,
            email="karte@example.de",
            shipping_address=address,
            payment_method="test",
        )

    return make


def test_a_void_reaches_the_gateway_after_the_cancellation_once(card_order):
    order = card_order()
    before = list(TestCardGateway.voided)
    services.cancel(number=order.number, actor=None, reason="Kundenwunsch")
    pay = Payment.objects.get(order=order)
    assert pay.status == "voided"
    assert TestCardGateway.voided == before  # not yet: the worker does it after the commit
    [action] = PaymentAction.objects.filter(payment=pay)
    assert action.kind == "void" and action.status == "pending"
    run_worker()
    action.refresh_from_db()
    assert action.status == "done" and TestCardGateway.voided == before + [pay.reference]
    # a stray repeat of the task changes nothing
    assert services.carry_out_payment_action(action.pk) == "not_pending"
    assert TestCardGateway.voided == before + [pay.reference]


def test_a_refund_of_a_captured_payment(card_order, make_user):
    order = card_order()
    Payment.objects.filter(order=order).update(status="captured")
    services.cancel(number=order.number, actor=None, reason="Kundenwunsch")
    before = list(TestCardGateway.refunded)
    run_worker()
    pay = Payment.objects.get(order=order)
    assert pay.status == "refunded" and pay.refunded_amount == pay.amount
    assert TestCardGateway.refunded == before + [(pay.reference, pay.amount)]


def test_a_rolled_back_cancellation_never_reaches_the_gateway(card_order):
    order = card_order()
    before = list(TestCardGateway.voided)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.cancel(number=order.number, actor=None, reason="Kundenwunsch")
        raise RuntimeError("the chunk failed")
    assert not PaymentAction.objects.exists()
    run_worker()
    assert (
        TestCardGateway.voided == before and Payment.objects.get(order=order).status == "authorized"
    )


def test_a_failing_gateway_is_retried_with_the_same_key(card_order, monkeypatch, settings):
    order = card_order()
    services.cancel(number=order.number, actor=None, reason="Kundenwunsch")
    action = PaymentAction.objects.get()
    keys = []
    calls = {"n": 0}

    def flaky(self, *, reference, idempotency_key=""):
        calls["n"] += 1
        keys.append(idempotency_key)
        if calls["n"] == 1:
            raise ConnectionError("provider down")

    monkeypatch.setattr(TestCardGateway, "void", flaky)
    assert services.carry_out_payment_action(action.pk) == "pending"
    action.refresh_from_db()
    assert action.attempts == 1 and "provider down" in action.last_error
    assert services.carry_out_payment_action(action.pk) == "done"
    assert keys == [action.key, action.key]
    settings.OUTBOX_MAX_ATTEMPTS = 1
    order2 = card_order()
    services.cancel(number=order2.number, actor=None, reason="x")
    calls["n"] = 0
    second = PaymentAction.objects.get(payment__order=order2)
    assert services.carry_out_payment_action(second.pk) == "failed"
