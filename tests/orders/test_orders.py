"""The order state machine and staff actions on orders."""

from __future__ import annotations

import pytest

from warenhaus.core.errors import Conflict, ValidationFailed
from warenhaus.core.models import AuditEntry
from warenhaus.inventory.models import Stock
from warenhaus.orders import services
from warenhaus.orders.models import Order, OrderStatus
from warenhaus.orders.services import TRANSITIONS

S = OrderStatus


@pytest.fixture
def place(db, variant, address):
    from warenhaus.checkout import services as checkout

    def make(qty=2, payment="invoice", token=""):
        cart, _ = checkout.create_cart()
        checkout.add_line(cart_id=cart.id, sku=variant.sku, quantity=qty)
        return checkout.place_order(
            cart_id=cart.id,
            email="kunde@example.de",
            shipping_address=address,
            payment_method=payment,
            payment_token=token,
        )

    return make


@pytest.fixture
def support(make_user):
    return make_user(roles=["support"])


@pytest.mark.parametrize("start", list(S))
@pytest.mark.parametrize("target", list(S))
def test_only_listed_transitions_are_allowed(place, start, target):
    order = place()
    Order.objects.filter(pk=order.pk).update(status=start)
    order.refresh_from_db()
    if target in TRANSITIONS[start]:
        services.transition(order, target, reason="test")
        assert Order.objects.get(pk=order.pk).status == target
        assert order.events.last().to_status == target
    else:
        with pytest.raises(Conflict) as err:
            services.transition(order, target)
        assert err.value.code == "invalid_transition"
        assert Order.objects.get(pk=order.pk).status == start


def test_cancel_releases_stock_refunds_and_is_audited(place, support, variant):
    order = place(qty=3, payment="test")
    assert Stock.objects.get(variant=variant).allocated == 3
    services.cancel(number=order.number, actor=support, reason="Kunde hat storniert")
    order.refresh_from_db()
    assert order.status == S.CANCELLED
    assert Stock.objects.get(variant=variant).allocated == 0
    assert order.payments.get().status == "voided"
    entry = AuditEntry.objects.get(action="order.cancel")
    assert (entry.actor, entry.object_id, entry.before, entry.after, entry.reason) == (
        support,
        order.number,
        {"status": "paid"},
        {"status": "cancelled"},
        "Kunde hat storniert",
    )
    with pytest.raises(Conflict):
        services.cancel(number=order.number, actor=support, reason="nochmal")


def test_a_reason_is_required(place, support):
    order = place()
    with pytest.raises(ValidationFailed) as err:
        services.hold(number=order.number, actor=support, reason="  ")
    assert err.value.code == "reason_required"


def test_hold_blocks_shipping_until_released(place, support, variant):
    order = place()
    services.hold(number=order.number, actor=support, reason="Adresse prüfen")
    with pytest.raises(Conflict):
        services.ship(number=order.number, actor=support)
    services.release(number=order.number, actor=support, reason="geprüft")
    assert Order.objects.get(pk=order.pk).status == S.AWAITING_PAYMENT
    services.ship(number=order.number, actor=support)
    stock = Stock.objects.get(variant=variant)
    assert (stock.on_hand, stock.allocated) == (8, 0)
    events = Order.objects.get(pk=order.pk).events.all()
    assert [e.to_status for e in events] == [
        "placed",
        "awaiting_payment",
        "on_hold",
        "awaiting_payment",
        "shipped",
    ]


def test_shipped_order_cannot_be_cancelled(place, support):
    order = place()
    services.ship(number=order.number, actor=support)
    with pytest.raises(Conflict) as err:
        services.cancel(number=order.number, actor=support, reason="zu spät")
    assert err.value.code == "invalid_transition"


def test_staff_actions_over_the_api(place, support, api_as):
    order = place()
    client = api_as(support)
    held = client.post(f"/orders/{order.number}/hold", {"reason": "Betrugsverdacht"})
    assert held.status_code == 200 and held.json()["status"] == "on_hold"
    assert held.json()["history"][-1]["reason"] == "Betrugsverdacht"
    ship = client.post(f"/orders/{order.number}/ship")
    assert ship.status_code == 409 and ship.json()["code"] == "invalid_transition"
    cancelled = client.post(f"/orders/{order.number}/cancel", {"reason": "Betrug bestätigt"})
    assert cancelled.json()["status"] == "cancelled"
    missing = client.post("/orders/WH-NOPE/cancel", {"reason": "x"})
    assert missing.status_code == 404 and missing.json()["code"] == "order_not_found"


def test_cancellation_mail_is_queued_once(place, support):
    from warenhaus.notifications.models import OutboxMessage

    order = place()
    services.cancel(number=order.number, actor=support, reason="Kundenwunsch")
    assert (
        OutboxMessage.objects.filter(kind="order_cancelled", to_email="kunde@example.de").count()
        == 1
    )


def test_audit_entries_cannot_be_edited(place, support):
    order = place()
    services.hold(number=order.number, actor=support, reason="x")
    entry = AuditEntry.objects.get(action="order.hold")
    entry.reason = "changed"
    with pytest.raises(RuntimeError):
        entry.save()
    with pytest.raises(RuntimeError):
        entry.delete()
