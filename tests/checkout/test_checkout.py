"""Carts and checkout as a shopper meets them, through the API."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.conftest import money
from warenhaus.checkout.models import Cart
from warenhaus.checkout.payments import TestCardGateway
from warenhaus.inventory.models import Stock
from warenhaus.notifications.models import OutboxMessage
from warenhaus.orders.models import Order, Payment


def _cart(api, *lines):
    cid = api.post("/carts").json()["id"]
    for sku, qty in lines:
        assert api.post(f"/carts/{cid}/lines", {"sku": sku, "quantity": qty}).status_code == 200
    return cid


def test_totals_with_mixed_vat_and_shipping(api, make_product):
    laptop = make_product(price="29.99", vat_rate="19").variants.get()
    book = make_product(price="10.00", vat_rate="7").variants.get()
    cid = _cart(api, (laptop.sku, 1), (book.sku, 1))
    totals = api.get(f"/carts/{cid}").json()["totals"]
    assert totals["subtotal"] == money("39.99")
    assert totals["shipping"] == money("4.90")  # free only from 50 EUR
    assert totals["total"] == money("44.89")
    # Shipping VAT is split over the rates in proportion to the goods: 29.99/39.99 and 10/39.99.
    rates = {r["rate"]: r["amount"]["amount"] for r in totals["vat_breakdown"]}
    # 4.90 splits into 3.67 + 1.23 (largest remainder), so 33.66 at 19 % and 11.23 at 7 %.
    assert rates == {"19": "5.37", "7": "0.73"}
    assert totals["vat"] == money("6.10")


def test_free_shipping_from_fifty_euros(api, make_product):
    v = make_product(price="50.00").variants.get()
    cid = _cart(api, (v.sku, 1))
    assert api.get(f"/carts/{cid}").json()["totals"]["shipping"] == money("0.00")
    api.put(f"/carts/{cid}/shipping", {"shipping_method": "express"})
    assert api.get(f"/carts/{cid}").json()["totals"]["shipping"] == money("12.90")


def test_lines_add_up_change_and_go(api, variant):
    cid = _cart(api, (variant.sku, 1), (variant.sku, 2))
    cart = api.get(f"/carts/{cid}").json()
    assert [(line["sku"], line["quantity"]) for line in cart["lines"]] == [(variant.sku, 3)]
    assert cart["lines"][0]["unit_price"] == money("49.97") and cart["lines"][0]["hold"] is None
    assert (
        api.patch(f"/carts/{cid}/lines/{variant.sku}", {"quantity": 5}).json()["lines"][0][
            "quantity"
        ]
        == 5
    )
    assert api.delete(f"/carts/{cid}/lines/{variant.sku}").json()["lines"] == []


def test_checkout_places_order_allocates_and_queues_confirmation(api, variant, checkout_body):
    cid = _cart(api, (variant.sku, 2))
    resp = api.post(f"/carts/{cid}/checkout", checkout_body, headers={"Idempotency-Key": "a"})
    assert resp.status_code == 201, resp.content
    order = resp.json()
    assert order["status"] == "awaiting_payment"  # invoice: paid after delivery
    assert order["totals"]["total"] == money("99.94")
    assert [h["to"] for h in order["history"]] == ["placed", "awaiting_payment"]
    stock = Stock.objects.get(variant=variant)
    assert (stock.on_hand, stock.allocated) == (10, 2)
    msg = OutboxMessage.objects.get(kind="order_confirmation")
    assert msg.to_email == "erika@example.de" and msg.related_object == f"order:{order['number']}"
    assert Cart.objects.get(pk=cid).status == "ordered"
    assert (
        api.post(f"/carts/{cid}/lines", {"sku": variant.sku, "quantity": 1}).json()["code"]
        == "cart_closed"
    )


def test_placed_order_reads_back_without_queries_and_still_chains(
    variant, address, django_assert_num_queries
):
    from warenhaus.checkout import services as checkout

    cart, _ = checkout.create_cart()
    checkout.add_line(cart_id=cart.id, sku=variant.sku, quantity=2)
    order = checkout.place_order(
        cart_id=cart.id, email="a@example.de", shipping_address=address, payment_method="invoice"
    )
    with django_assert_num_queries(0):
        assert [line.quantity for line in order.lines.all()] == [2]
        assert [e.to_status for e in order.events.all()] == ["placed", "awaiting_payment"]
    assert order.lines.order_by("variant_id").count() == 1


def test_card_payment_marks_order_paid(api, variant, checkout_body):
    cid = _cart(api, (variant.sku, 1))
    body = dict(checkout_body, payment_method="test", payment_token="approve")
    order = api.post(f"/carts/{cid}/checkout", body, headers={"Idempotency-Key": "a"}).json()
    assert order["status"] == "paid"
    assert Payment.objects.get(order__number=order["number"]).status == "authorized"


@pytest.mark.parametrize(
    "outcome,code,status",
    [("decline", "payment_declined", 402), ("timeout", "payment_timeout", 402)],
)
def test_failed_payment_leaves_nothing_behind(api, variant, checkout_body, outcome, code, status):
    cid = _cart(api, (variant.sku, 2))
    body = dict(checkout_body, payment_method="test", payment_token=outcome)
    resp = api.post(f"/carts/{cid}/checkout", body, headers={"Idempotency-Key": "pay-1"})
    assert resp.status_code == status and resp.json()["code"] == code
    assert (
        Order.objects.count() == 0
        and Payment.objects.count() == 0
        and OutboxMessage.objects.count() == 0
    )
    stock = Stock.objects.get(variant=variant)
    assert stock.allocated == 0
    assert Cart.objects.get(pk=cid).status == "open"


def test_timeout_can_be_retried_with_the_same_key(api, variant, checkout_body):
    cid = _cart(api, (variant.sku, 1))
    first = api.post(
        f"/carts/{cid}/checkout",
        dict(checkout_body, payment_method="test", payment_token="timeout"),
        headers={"Idempotency-Key": "t"},
    )
    assert first.json()["code"] == "payment_timeout"
    # A timeout is not remembered for the key: the same request may go through later.
    # (The body differs only in the token a test uses to pick the outcome.)
    from warenhaus.checkout.payments import GATEWAYS

    assert "test" in GATEWAYS
    again = api.post(
        f"/carts/{cid}/checkout",
        dict(checkout_body, payment_method="test", payment_token="timeout"),
        headers={"Idempotency-Key": "t"},
    )
    assert again.json()["code"] == "payment_timeout"
    assert Order.objects.count() == 0


def test_declined_answer_is_replayed_for_the_same_key(api, variant, checkout_body):
    cid = _cart(api, (variant.sku, 1))
    body = dict(checkout_body, payment_method="test", payment_token="decline")
    first = api.post(f"/carts/{cid}/checkout", body, headers={"Idempotency-Key": "d"})
    again = api.post(f"/carts/{cid}/checkout", body, headers={"Idempotency-Key": "d"})
    assert first.status_code == again.status_code == 402 and first.json() == again.json()


def test_authorisation_is_voided_when_the_order_fails_after_it(
    api, variant, checkout_body, monkeypatch
):
    from warenhaus.orders import services as orders

    cid = _cart(api, (variant.sku, 1))

    def explode(*a, **kw):
        raise orders.Conflict("simulated failure after payment", code="simulated")

    monkeypatch.setattr(orders, "record_placed_order", explode)
    before = len(TestCardGateway.voided)
    resp = api.post(
        f"/carts/{cid}/checkout",
        dict(checkout_body, payment_method="test"),
        headers={"Idempotency-Key": "v"},
    )
    assert resp.status_code == 409
    assert len(TestCardGateway.voided) == before + 1
    assert Order.objects.count() == 0 and Stock.objects.get(variant=variant).allocated == 0


def test_out_of_stock_at_checkout(api, make_product, checkout_body):
    v = make_product(on_hand=3).variants.get()
    cid = _cart(api, (v.sku, 3))
    Stock.objects.filter(variant=v).update(on_hand=2)
    resp = api.post(f"/carts/{cid}/checkout", checkout_body, headers={"Idempotency-Key": "o"})
    assert resp.status_code == 409 and resp.json()["code"] == "out_of_stock"
    problems = api.get(f"/carts/{cid}").json()["problems"]
    assert problems[0]["code"] == "insufficient_stock" and problems[0]["available"] == 2
    assert Order.objects.count() == 0


def test_price_change_is_shown_and_must_be_seen_before_checkout(
    api, variant, checkout_body, make_user
):
    from warenhaus.catalog.services import set_price

    cid = _cart(api, (variant.sku, 1))
    set_price(actor=make_user(roles=["pricing"]), sku=variant.sku, amount="59.97")
    cart = api.get(f"/carts/{cid}").json()
    assert cart["problems"] == [
        {
            "code": "price_changed",
            "sku": variant.sku,
            "old_price": money("49.97"),
            "new_price": money("59.97"),
            "message": cart["problems"][0]["message"],
        }
    ]
    assert cart["lines"][0]["unit_price"] == money("59.97")
    refused = api.post(f"/carts/{cid}/checkout", checkout_body, headers={"Idempotency-Key": "p"})
    assert refused.status_code == 409 and refused.json()["code"] == "price_changed"
    assert api.get(f"/carts/{cid}").json()["problems"] == []
    placed = api.post(f"/carts/{cid}/checkout", checkout_body, headers={"Idempotency-Key": "p"})
    assert placed.status_code == 201 and placed.json()["totals"]["subtotal"] == money("59.97")


def test_unavailable_product_is_a_problem_and_blocks_checkout(api, variant, checkout_body):
    cid = _cart(api, (variant.sku, 1))
    variant.product.is_active = False
    variant.product.save()
    cart = api.get(f"/carts/{cid}").json()
    assert cart["problems"][0]["code"] == "not_available"
    assert cart["totals"]["total"] == money("0.00")
    resp = api.post(f"/carts/{cid}/checkout", checkout_body, headers={"Idempotency-Key": "u"})
    assert resp.status_code == 409 and resp.json()["code"] == "not_available"


def test_empty_cart_cannot_check_out(api, db, checkout_body):
    cid = api.post("/carts").json()["id"]
    assert (
        api.post(f"/carts/{cid}/checkout", checkout_body, headers={"Idempotency-Key": "e"}).json()[
            "code"
        ]
        == "cart_empty"
    )


def test_anonymous_cart_merges_into_shoppers_cart_at_login(api, api_as, make_product, shopper):
    a, b = make_product().variants.get(), make_product().variants.get()
    mine = api_as(shopper)
    my_cart = mine.post("/carts").json()["id"]
    mine.post(f"/carts/{my_cart}/lines", {"sku": a.sku, "quantity": 1})
    anon = _cart(api, (a.sku, 2), (b.sku, 1))
    resp = api.post(
        "/auth/token", {"email": shopper.email, "password": "Geheim-Passwort-1", "cart_id": anon}
    )
    assert resp.status_code == 200 and resp.json()["cart_id"] == my_cart
    lines = {
        line["sku"]: line["quantity"] for line in mine.get(f"/carts/{my_cart}").json()["lines"]
    }
    assert lines == {a.sku: 3, b.sku: 1}
    assert Cart.objects.get(pk=anon).status == "merged"


def test_shopper_gets_their_open_cart_back(api_as, shopper):
    client = api_as(shopper)
    first = client.post("/carts")
    again = client.post("/carts")
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]


def test_guest_and_shopper_orders(api_as, shopper, variant, checkout_body):
    client = api_as(shopper)
    cid = client.post("/carts").json()["id"]
    client.post(f"/carts/{cid}/lines", {"sku": variant.sku, "quantity": 1})
    number = client.post(
        f"/carts/{cid}/checkout", checkout_body, headers={"Idempotency-Key": "g"}
    ).json()["number"]
    listing = client.get("/orders").json()
    assert [o["number"] for o in listing["items"]] == [number] and listing["next_cursor"] is None
    detail = client.get(f"/orders/{number}").json()
    assert detail["lines"][0]["title"] == variant.product.title
    assert Decimal(detail["totals"]["total"]["amount"]) == Decimal("54.87")  # with 4.90 shipping


def test_authorisation_is_voided_when_the_commit_fails_after_the_order(
    api, variant, checkout_body, monkeypatch
):
    from warenhaus.core import idempotency

    cid = _cart(api, (variant.sku, 1))
    real_update = idempotency.IdempotencyRecord.objects.filter

    def broken_filter(*a, **kw):
        if "pk" in kw:
            raise RuntimeError("simulated failure after the order was written")
        return real_update(*a, **kw)

    monkeypatch.setattr(idempotency.IdempotencyRecord.objects, "filter", broken_filter)
    before = len(TestCardGateway.voided)
    resp = api.post(
        f"/carts/{cid}/checkout",
        dict(checkout_body, payment_method="test"),
        headers={"Idempotency-Key": "c"},
    )
    assert resp.status_code == 500
    assert len(TestCardGateway.voided) == before + 1
    assert Order.objects.count() == 0 and Stock.objects.get(variant=variant).allocated == 0
