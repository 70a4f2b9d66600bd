"""The card is asked after the stock reservation committed: a declined card gives everything
back, a retry with the same Idempotency-Key never charges twice, and a checkout that dies
mid-way is settled by the worker either way."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.notifications.conftest import Clock
from warenhaus.checkout.models import Cart
from warenhaus.inventory.models import Stock
from warenhaus.notifications.models import OutboxMessage
from warenhaus.orders.models import Order, Payment
from warenhaus.payments.gateways import TestCardGateway

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def _cart(api, *lines):
    cid = api.post("/carts").json()["id"]
    for sku, qty in lines:
        assert api.post(f"/carts/{cid}/lines", {"sku": sku, "quantity": qty}).status_code == 200
    return cid


def _charges() -> int:
    return len(TestCardGateway.charges)


@pytest.fixture
def voucher(make_user):
    """An approved campaign with the public code SOMMER10 (10 EUR off from 30 EUR)."""
    from warenhaus.core.clock import now
    from warenhaus.promotions import services

    author = make_user(roles=["promotions"])
    approver = make_user(roles=["promotions_approver"])
    c = services.create_campaign(
        actor=author,
        code_mode="public",
        public_code="SOMMER10",
        name="Sommeraktion",
        discount_kind="fixed",
        discount_value="10.00",
        min_basket="30.00",
        budget="1000.00",
        total_limit=100,
        valid_until=now() + timedelta(days=30),
    )
    return services.approve_campaign(campaign_id=c.pk, actor=approver, override_reason="")


def test_a_declined_card_gives_back_stock_and_vouchers_and_leaves_the_cart_as_it_was(
    api, variant, checkout_body, voucher
):
    from warenhaus.promotions.models import Campaign, CartVoucher, Code, Redemption

    cid = _cart(api, (variant.sku, 2))
    assert api.post(f"/carts/{cid}/vouchers", {"code": "SOMMER10"}).status_code == 200
    before = api.get(f"/carts/{cid}").json()
    body = dict(checkout_body, payment_method="test", payment_token="decline")
    resp = api.post(f"/carts/{cid}/checkout", body, headers={"Idempotency-Key": "d1"})
    assert resp.status_code == 402 and resp.json()["code"] == "payment_declined"
    assert Order.objects.count() == 0 and Payment.objects.count() == 0
    assert Redemption.objects.count() == 0 and OutboxMessage.objects.count() == 0
    c = Campaign.objects.get(pk=voucher.pk)
    assert (c.redeemed_count, c.spent_amount) == (0, Decimal("0"))
    assert Code.objects.get(campaign=voucher).uses == 0
    assert Stock.objects.get(variant=variant).allocated == 0
    assert Cart.objects.get(pk=cid).status == "open" and CartVoucher.objects.count() == 1
    assert api.get(f"/carts/{cid}").json() == before
    # the shopper pays with another card: the voucher counts once
    body = dict(checkout_body, payment_method="test", payment_token="approve")
    order = api.post(f"/carts/{cid}/checkout", body, headers={"Idempotency-Key": "d2"}).json()
    assert order["status"] == "paid" and order["totals"]["discount"]["amount"] == "10.00"
    assert Campaign.objects.get(pk=voucher.pk).redeemed_count == 1
    assert OutboxMessage.objects.filter(kind="order_confirmation").count() == 1


def test_a_declined_card_gives_back_the_deal_hold(make_product, make_user, clock, address):
    from django.utils import timezone

    from warenhaus.checkout import services as checkout
    from warenhaus.core.errors import PaymentFailed
    from warenhaus.deals import services as deals
    from warenhaus.deals.models import Deal, Hold, HouseholdUsage

    staff = make_user(roles=["pricing"])
    variant = make_product(
        price="119.99", on_hand=50, sku=f"DEAL-{uuid.uuid4().hex[:6]}"
    ).variants.get()
    start = timezone.now()
    deal = deals.create_deal(
        actor=staff,
        sku=variant.sku,
        deal_price="49.97",
        units=3,
        starts_at=start.isoformat(),
        ends_at=(start + timedelta(hours=1)).isoformat(),
        limit_per_customer=1,
        hold_minutes=10,
        admissions_per_minute=600,
    )
    shopper = make_user(email="held@example.de")
    ticket = deals.join_queue(deal_id=deal.pk, user=shopper)
    clock.advance(1)
    state = deals.ticket_status(deal_id=deal.pk, ticket_id=ticket["ticket"])
    assert state["state"] == "admitted"
    cart_id = state["cart_id"]
    before = (
        Deal.objects.values_list("sold", "held").get(pk=deal.pk),
        Stock.objects.get(variant=variant).allocated,
    )
    with pytest.raises(PaymentFailed):
        checkout.place_order(
            cart_id=cart_id,
            user=shopper,
            email=shopper.email,
            shipping_address=address,
            payment_method="test",
            payment_token="decline:4242-0001",
        )
    hold = Hold.objects.get(cart_id=cart_id)
    assert hold.status == "active" and hold.order_id is None
    assert (
        Deal.objects.values_list("sold", "held").get(pk=deal.pk),
        Stock.objects.get(variant=variant).allocated,
    ) == before
    assert not HouseholdUsage.objects.filter(deal=deal, units__gt=0).exists()
    assert Cart.objects.get(pk=cart_id).status == "open" and Order.objects.count() == 0
    order = checkout.place_order(
        cart_id=cart_id,
        user=shopper,
        email=shopper.email,
        shipping_address=address,
        payment_method="test",
        payment_token="approve:4242-0001",
    )
    assert order.status == "paid" and order.subtotal == Decimal("49.97")
    assert Deal.objects.values_list("sold", "held").get(pk=deal.pk) == (1, 0)


def test_a_retry_with_the_same_key_never_charges_twice(api, variant, checkout_body, monkeypatch):
    cid = _cart(api, (variant.sku, 1))
    body = dict(checkout_body, payment_method="test", payment_token="approve")
    real = TestCardGateway.authorize
    during = []

    def authorize_and_meanwhile_retry(self, **kw):
        # the shopper's app resends while the card is being asked: told to wait, no charge
        during.append(api.post(f"/carts/{cid}/checkout", body, headers={"Idempotency-Key": "r"}))
        return real(self, **kw)

    monkeypatch.setattr(TestCardGateway, "authorize", authorize_and_meanwhile_retry)
    charges = _charges()
    first = api.post(f"/carts/{cid}/checkout", body, headers={"Idempotency-Key": "r"})
    assert first.status_code == 201 and first.json()["status"] == "paid"
    assert [r.json()["code"] for r in during] == ["idempotency_in_progress"]
    again = api.post(f"/carts/{cid}/checkout", body, headers={"Idempotency-Key": "r"})
    assert again.status_code == 201 and again.json() == first.json()
    assert _charges() == charges + 1 and Order.objects.count() == 1
    key, amount = TestCardGateway.charges[-1]
    assert key == f"authorize:{first.json()['number']}" and amount == Decimal("54.87")


class Killed(BaseException):
    """The checkout's process dies here: nothing after it runs."""


@pytest.mark.parametrize("authorised", [True, False], ids=["after-authorising", "before"])
def test_a_checkout_that_dies_mid_way_is_settled_by_the_worker(
    api, variant, checkout_body, monkeypatch, clock, authorised
):
    from warenhaus.checkout import services
    from warenhaus.checkout.settlement import settle_stuck

    cid = _cart(api, (variant.sku, 2))
    body = dict(checkout_body, payment_method="test", payment_token="approve")

    def die(marker, **kw):
        if authorised:
            TestCardGateway().authorize(
                amount=Decimal("1"),
                order_number=marker["order"],
                idempotency_key=services.authorization_key(marker["order"]),
            )
        raise Killed()

    monkeypatch.setattr(services, "authorise_pending", die)
    charges = _charges()
    with pytest.raises(Killed):
        api.post(f"/carts/{cid}/checkout", body, headers={"Idempotency-Key": "k"})
    order = Order.objects.get()
    assert order.status == "authorizing" and Stock.objects.get(variant=variant).allocated == 2
    assert OutboxMessage.objects.count() == 0  # no confirmation before the card said yes
    retry = api.post(f"/carts/{cid}/checkout", body, headers={"Idempotency-Key": "k"})
    assert retry.status_code == 409 and retry.json()["code"] == "idempotency_in_progress"
    assert settle_stuck() == {}  # not yet: the checkout may still be asking
    clock.advance(121)
    assert settle_stuck() == {order.number: "confirmed" if authorised else "compensated"}
    monkeypatch.undo()
    if authorised:
        order.refresh_from_db()
        assert order.status == "paid" and Payment.objects.get(order=order).status == "authorized"
        assert OutboxMessage.objects.filter(kind="order_confirmation").count() == 1
        again = api.post(f"/carts/{cid}/checkout", body, headers={"Idempotency-Key": "k"})
        assert again.status_code == 201 and again.json()["number"] == order.number
        assert again.json()["status"] == "paid" and _charges() == charges + 1
    else:
        assert Order.objects.count() == 0 and Stock.objects.get(variant=variant).allocated == 0
        assert Cart.objects.get(pk=cid).status == "open" and _charges() == charges
        again = api.post(f"/carts/{cid}/checkout", body, headers={"Idempotency-Key": "k"})
        assert again.status_code == 201 and again.json()["status"] == "paid"
        assert _charges() == charges + 1
