"""Vouchers in carts and at checkout, through the API: every reason a code does not apply has
its own stable code, the cart shows what applies and what no longer does, checkout redeems in
the order's transaction, cancelling releases, and guessing is rate-limited."""

from __future__ import annotations

from datetime import timedelta

import pytest

from warenhaus.checkout import vouchers as cart_vouchers
from warenhaus.core.clock import now
from warenhaus.promotions import codes as codelib
from warenhaus.promotions import services
from warenhaus.promotions.models import Campaign, Code, CustomerUsage, Redemption

try:
    from tests.conftest import money
except ImportError:
    from conftest import money


def _cart(api, product, quantity=1):
    cart_id = api.post("/carts").json()["id"]
    assert (
        api.post(
            f"/carts/{cart_id}/lines", {"sku": product.variants.get().sku, "quantity": quantity}
        ).status_code
        == 200
    )
    return cart_id


def _apply(api, cart_id, code):
    return api.post(f"/carts/{cart_id}/vouchers", {"code": code})


def test_a_public_code_applies_and_shows_in_the_cart(api, make_product, make_campaign):
    make_campaign(public_code="SOMMER10")
    cart_id = _cart(api, make_product(price="49.97"))
    resp = _apply(api, cart_id, "sommer 10")
    assert resp.status_code == 200, resp.json()
    body = resp.json()
    assert body["totals"]["discount"] == money("10.00")
    assert body["totals"]["total"] == money("44.87")  # 49.97 - 10 + 4.90 shipping
    assert body["vouchers"][0]["code_hint"] == "…R10" and body["vouchers"][0]["applies"] is True
    assert api.get(f"/carts/{cart_id}").json()["totals"]["discount"] == money("10.00")
    resp = api.delete(f"/carts/{cart_id}/vouchers/SOMMER10")
    assert resp.status_code == 200 and resp.json()["vouchers"] == []
    assert resp.json()["totals"]["discount"] == money("0.00")


def _refusal(api, cart_id, code, expected, status=None):
    resp = _apply(api, cart_id, code)
    assert resp.status_code == (status or resp.status_code) and resp.status_code in {409, 422}, (
        resp.content
    )
    assert resp["Content-Type"].startswith("application/problem+json")
    assert resp.json()["code"] == expected, resp.json()
    return resp


def test_every_reason_has_its_code(
    api, make_product, make_campaign, unique_code, author, approver, make_category, settings
):
    settings.VOUCHER_ATTEMPT_LIMIT = 1000
    product = make_product(price="49.97")
    cart_id = _cart(api, product)
    generated = codelib.generate()
    typo = generated[:-1] + ("2" if generated[-1] != "2" else "3")
    _refusal(api, cart_id, typo, "voucher_typo", 422)
    _refusal(api, cart_id, codelib.generate(), "voucher_unknown", 422)
    _refusal(api, cart_id, "GIBTESNICHT", "voucher_unknown", 422)
    make_campaign(public_code="ENTWURF1", approve=False)
    _refusal(api, cart_id, "ENTWURF1", "voucher_not_approved", 409)
    paused = make_campaign(public_code="PAUSE1")
    services.pause_campaign(campaign_id=paused.pk, actor=approver, reason="x")
    _refusal(api, cart_id, "PAUSE1", "voucher_paused", 409)
    revoked = make_campaign(public_code="WIDERRUF1")
    services.revoke_campaign(campaign_id=revoked.pk, actor=approver, reason="x")
    _refusal(api, cart_id, "WIDERRUF1", "voucher_revoked", 409)
    make_campaign(
        public_code="ABGELAUFEN",
        valid_from=now() - timedelta(days=3),
        valid_until=now() - timedelta(days=1),
    )
    _refusal(api, cart_id, "ABGELAUFEN", "voucher_expired", 409)
    make_campaign(
        public_code="BALDGUELTIG",
        valid_from=now() + timedelta(days=1),
        valid_until=now() + timedelta(days=3),
    )
    _refusal(api, cart_id, "BALDGUELTIG", "voucher_not_yet_valid", 409)
    used_up = make_campaign(public_code="AUFGEBRAUCHT1", total_limit=1)
    Campaign.objects.filter(pk=used_up.pk).update(redeemed_count=1)
    _refusal(api, cart_id, "AUFGEBRAUCHT1", "voucher_exhausted", 409)
    c, single = unique_code()
    Code.objects.filter(campaign=c).update(uses=1)
    _refusal(api, cart_id, single, "voucher_exhausted", 409)
    broke = make_campaign(public_code="PLEITE1", budget="100.00")
    Campaign.objects.filter(pk=broke.pk).update(spent_amount="95.00")
    _refusal(api, cart_id, "PLEITE1", "voucher_budget_exhausted", 409)
    make_campaign(public_code="GESPERRT1")
    services.block_code(code="GESPERRT1", actor=author, reason="x")
    _refusal(api, cart_id, "GESPERRT1", "voucher_blocked", 409)
    make_campaign(public_code="AB100EURO", min_basket="100.00")
    _refusal(api, cart_id, "AB100EURO", "voucher_min_basket", 409)
    make_campaign(public_code="NURTELEFON", channels=["phone"])
    _refusal(api, cart_id, "NURTELEFON", "voucher_channel", 422)
    make_campaign(public_code="NURBUECHER", eligible_categories=[make_category().slug])
    _refusal(api, cart_id, "NURBUECHER", "voucher_not_eligible", 422)
    make_campaign(public_code="NURKUNDEN", customer_eligibility="registered")
    # an anonymous cart learns at checkout; tested there
    make_campaign(public_code="EXKLUSIV1")
    make_campaign(public_code="EXKLUSIV2")
    assert _apply(api, cart_id, "EXKLUSIV1").status_code == 200
    _refusal(api, cart_id, "EXKLUSIV2", "voucher_not_stackable", 409)


def test_limit_per_customer_at_apply_and_checkout(
    api_as, make_user, make_product, make_campaign, address
):
    shopper = make_user()
    client = api_as(shopper)
    make_campaign(public_code="EINMALPRO", per_customer_limit=1)
    product = make_product(price="49.97")
    cart_id = _cart(client, product)
    assert _apply(client, cart_id, "EINMALPRO").status_code == 200
    resp = client.post(
        f"/carts/{cart_id}/checkout",
        {"email": shopper.email, "shipping_address": address, "payment_method": "invoice"},
        headers={"Idempotency-Key": "k1"},
    )
    assert resp.status_code == 201, resp.json()
    assert resp.json()["totals"]["discount"] == money("10.00")
    cart_id = _cart(client, product)
    _refusal(client, cart_id, "EINMALPRO", "limit_per_customer", 409)
    # a guest checkout with the same e-mail address counts against the same customer
    from warenhaus.checkout import services as checkout

    guest_cart, _ = checkout.create_cart()
    checkout.add_line(cart_id=guest_cart.id, sku=product.variants.get().sku, quantity=1)
    cart_vouchers.apply_voucher(cart_id=guest_cart.id, code="EINMALPRO")
    with pytest.raises(Exception) as err:
        checkout.place_order(
            cart_id=guest_cart.id,
            email=shopper.email,
            shipping_address=address,
            payment_method="invoice",
        )
    assert err.value.code == "limit_per_customer"


def test_checkout_redeems_and_records_the_redemption(api, make_product, unique_code, address):
    c, code = unique_code()
    cart_id = _cart(api, make_product(price="49.97"))
    assert _apply(api, cart_id, code).status_code == 200
    resp = api.post(
        f"/carts/{cart_id}/checkout",
        {"email": "erika@example.de", "shipping_address": address, "payment_method": "invoice"},
        headers={"Idempotency-Key": "r1"},
    )
    assert resp.status_code == 201, resp.json()
    order = resp.json()
    assert order["totals"]["discount"] == money("10.00")
    red = Redemption.objects.get()
    assert (red.order.number, red.amount, red.channel, red.redeemer_key, red.guest) == (
        order["number"],
        red.order.discount,
        "api",
        "email:erika@example.de",
        True,
    )
    assert red.client_ip == "127.0.0.1" and red.basket_value == red.order.subtotal
    c.refresh_from_db()
    assert (c.redeemed_count, str(c.spent_amount)) == (1, "10.00")
    assert Code.objects.get(campaign=c).uses == 1
    # the single-use code is spent
    cart2 = _cart(api, make_product(price="49.97"))
    _refusal(api, cart2, code, "voucher_exhausted")


def test_a_voucher_paused_after_applying_shows_a_problem_and_blocks_checkout(
    api, make_product, make_campaign, approver, address
):
    c = make_campaign(public_code="BALDPAUSE")
    cart_id = _cart(api, make_product(price="49.97"))
    assert _apply(api, cart_id, "BALDPAUSE").status_code == 200
    services.pause_campaign(campaign_id=c.pk, actor=approver, reason="Leck")
    body = api.get(f"/carts/{cart_id}").json()  # the very next request
    assert body["totals"]["discount"] == money("0.00")
    assert (
        body["vouchers"][0]["applies"] is False
        and body["vouchers"][0]["problem"] == "voucher_paused"
    )
    assert any(p["code"] == "voucher_paused" for p in body["problems"])
    resp = api.post(
        f"/carts/{cart_id}/checkout",
        {"email": "e@example.de", "shipping_address": address, "payment_method": "invoice"},
        headers={"Idempotency-Key": "p1"},
    )
    assert resp.status_code == 409 and resp.json()["code"] == "voucher_paused"
    from warenhaus.orders.models import Order

    assert Order.objects.count() == 0


def test_a_code_blocked_after_applying_refuses_checkout(
    api, make_product, unique_code, author, address
):
    _c, code = unique_code()
    cart_id = _cart(api, make_product(price="49.97"))
    assert _apply(api, cart_id, code).status_code == 200
    staff = api.__class__(api.client)
    from warenhaus.accounts.services import issue_token

    staff.token = issue_token(user=author)
    assert staff.post(f"/codes/{code}/block", {"reason": "Leck"}).status_code == 200
    resp = api.post(
        f"/carts/{cart_id}/checkout",
        {"email": "e@example.de", "shipping_address": address, "payment_method": "invoice"},
        headers={"Idempotency-Key": "b1"},
    )
    assert resp.status_code == 409 and resp.json()["code"] == "voucher_blocked"


def test_discount_never_exceeds_the_share_of_the_basket(api, make_product, make_campaign):
    make_campaign(
        public_code="HALBEHALBE",
        discount_value="40.00",
        min_basket="10.00",
        max_share="50",
        override="Test",
    )
    cart_id = _cart(api, make_product(price="30.00"))
    body = _apply(api, cart_id, "HALBEHALBE").json()
    assert body["totals"]["discount"] == money("15.00")
    make_campaign(
        public_code="PROZENT",
        discount_kind="percent",
        discount_value="20",
        discount_cap="5.00",
        stacking="stackable",
        min_basket="0",
    )
    cart2 = _cart(api, make_product(price="100.00"))
    assert _apply(api, cart2, "PROZENT").json()["totals"]["discount"] == money("5.00")


def test_only_eligible_items_count(api, make_product, make_category, make_campaign):
    books = make_category()
    make_campaign(
        public_code="BUCHRABATT",
        discount_kind="percent",
        discount_value="10",
        eligible_categories=[books.slug],
        min_basket="0",
    )
    book = make_product(price="20.00", category=books)
    other = make_product(price="80.00")
    cart_id = _cart(api, book)
    api.post(f"/carts/{cart_id}/lines", {"sku": other.variants.get().sku, "quantity": 1})
    assert _apply(api, cart_id, "BUCHRABATT").json()["totals"]["discount"] == money("2.00")


def test_new_customers_only(api_as, make_user, make_product, make_campaign, address):
    shopper = make_user()
    client = api_as(shopper)
    make_campaign(public_code="ERSTBESTELLUNG", customer_eligibility="new", stacking="stackable")
    product = make_product(price="49.97")
    cart_id = _cart(client, product)
    assert _apply(client, cart_id, "ERSTBESTELLUNG").status_code == 200
    assert (
        client.post(
            f"/carts/{cart_id}/checkout",
            {"email": shopper.email, "shipping_address": address, "payment_method": "invoice"},
            headers={"Idempotency-Key": "n1"},
        ).status_code
        == 201
    )
    cart_id = _cart(client, product)
    _refusal(client, cart_id, "ERSTBESTELLUNG", "voucher_not_eligible")


def test_registered_only_is_checked_at_checkout_for_guests(
    api, make_product, make_campaign, address
):
    make_campaign(public_code="NURKUNDEN")
    Campaign.objects.filter(name="Sommeraktion").update(customer_eligibility="registered")
    cart_id = _cart(api, make_product(price="49.97"))
    assert _apply(api, cart_id, "NURKUNDEN").status_code == 200
    resp = api.post(
        f"/carts/{cart_id}/checkout",
        {"email": "gast@example.de", "shipping_address": address, "payment_method": "invoice"},
        headers={"Idempotency-Key": "g1"},
    )
    assert resp.status_code == 422 and resp.json()["code"] == "voucher_not_eligible"


def test_cancelling_releases_the_redemption_when_the_campaign_says_so(
    api, make_product, make_campaign, address, make_user
):
    from warenhaus.orders import services as orders

    support = make_user(roles=["support"])
    keep = make_campaign(public_code="FREIGEBEN", per_customer_limit=1)
    cart_id = _cart(api, make_product(price="49.97"))
    _apply(api, cart_id, "FREIGEBEN")
    number = api.post(
        f"/carts/{cart_id}/checkout",
        {"email": "e@example.de", "shipping_address": address, "payment_method": "invoice"},
        headers={"Idempotency-Key": "c1"},
    ).json()["number"]
    orders.cancel(number=number, actor=support, reason="Kundenwunsch")
    keep.refresh_from_db()
    assert (keep.redeemed_count, str(keep.spent_amount)) == (0, "0.00")
    assert Redemption.objects.get().released_at is not None
    assert CustomerUsage.objects.get(campaign=keep).uses == 0
    # and a campaign that does not release keeps the count (a leaked code stays spent)
    sticky = make_campaign(public_code="BLEIBT", release_redemption_on_cancel=False)
    cart_id = _cart(api, make_product(price="49.97"))
    _apply(api, cart_id, "BLEIBT")
    number = api.post(
        f"/carts/{cart_id}/checkout",
        {"email": "f@example.de", "shipping_address": address, "payment_method": "invoice"},
        headers={"Idempotency-Key": "c2"},
    ).json()["number"]
    orders.cancel(number=number, actor=support, reason="Leck")
    sticky.refresh_from_db()
    assert sticky.redeemed_count == 1


def test_wrong_codes_lock_the_client_out(api, make_product, settings):
    settings.VOUCHER_ATTEMPT_LIMIT = 5
    cart_id = _cart(api, make_product(price="49.97"))
    for i in range(5):
        assert _apply(api, cart_id, f"RATEN{i}XY").json()["code"] == "voucher_unknown"
    resp = _apply(api, cart_id, "RATEN9XY")
    assert resp.status_code == 429 and resp.json()["code"] == "rate_limited"
    assert int(resp["Retry-After"]) >= 1
    # a new cart does not help: the address limit catches up
    settings.VOUCHER_ATTEMPT_LIMIT_ADDRESS = 6
    other = _cart(api, make_product(price="49.97"))
    assert _apply(api, other, "RATENAXY").status_code == 422
    assert _apply(api, other, "RATENBXY").status_code == 429


def test_phone_orders_need_the_capability_and_count_as_phone(
    api_as, make_user, make_product, make_campaign, address
):
    make_campaign(public_code="TELEFON10", channels=["phone"])
    support = make_user(roles=["support"])
    customer = make_user()
    agent = api_as(support)
    cart_id = _cart(agent, make_product(price="49.97"))
    assert (
        agent.post(
            f"/carts/{cart_id}/vouchers", {"code": "TELEFON10", "channel": "phone"}
        ).status_code
        == 200
    )
    resp = agent.post(
        f"/carts/{cart_id}/checkout",
        {
            "email": customer.email,
            "shipping_address": address,
            "payment_method": "invoice",
            "channel": "phone",
        },
        headers={"Idempotency-Key": "t1"},
    )
    assert resp.status_code == 201, resp.json()
    red = Redemption.objects.get()
    assert red.channel == "phone" and red.redeemer_key == f"user:{customer.pk}"
    assert red.order.user_id == customer.pk and red.order.channel == "phone"
    shopper = api_as(make_user())
    cart2 = _cart(shopper, make_product(price="49.97"))
    resp = shopper.post(
        f"/carts/{cart2}/checkout",
        {
            "email": "x@example.de",
            "shipping_address": address,
            "payment_method": "invoice",
            "channel": "phone",
        },
        headers={"Idempotency-Key": "t2"},
    )
    assert resp.status_code == 403


def test_a_voucher_channel_is_enforced_at_checkout(api, make_product, make_campaign, address):
    from warenhaus.checkout import services as checkout

    make_campaign(public_code="NURWEB10", channels=["web"])
    cart, _ = checkout.create_cart()
    checkout.add_line(
        cart_id=cart.id, sku=make_product(price="49.97").variants.get().sku, quantity=1
    )
    cart_vouchers.apply_voucher(cart_id=cart.id, code="NURWEB10", channel="web")
    resp = api.post(
        f"/carts/{cart.id}/checkout",
        {"email": "e@example.de", "shipping_address": address, "payment_method": "invoice"},
        headers={"Idempotency-Key": "w1"},
    )
    assert resp.status_code == 422 and resp.json()["code"] == "voucher_channel"
    order = checkout.place_order(
        cart_id=cart.id,
        email="e@example.de",
        shipping_address=address,
        payment_method="invoice",
        channel="web",
    )
    assert order.discount == 10


def test_a_checkout_refused_for_a_voucher_can_be_sent_again_with_the_same_key(
    api, make_product, make_campaign, approver, address
):
    c = make_campaign(public_code="WIEDERHOLEN")
    cart_id = _cart(api, make_product(price="49.97"))
    _apply(api, cart_id, "WIEDERHOLEN")
    services.pause_campaign(campaign_id=c.pk, actor=approver, reason="Leck")
    body = {"email": "e@example.de", "shipping_address": address, "payment_method": "invoice"}
    assert (
        api.post(f"/carts/{cart_id}/checkout", body, headers={"Idempotency-Key": "same"}).json()[
            "code"
        ]
        == "voucher_paused"
    )
    assert api.delete(f"/carts/{cart_id}/vouchers/WIEDERHOLEN").status_code == 200
    resp = api.post(f"/carts/{cart_id}/checkout", body, headers={"Idempotency-Key": "same"})
    assert resp.status_code == 201 and resp.json()["totals"]["discount"] == money("0.00")


def test_two_stackable_vouchers_together_stay_within_the_share(api, make_product, make_campaign):
    make_campaign(
        public_code="STAPEL1",
        stacking="stackable",
        discount_value="10.00",
        min_basket="0",
        override="Test",
    )
    make_campaign(
        public_code="STAPEL2",
        stacking="stackable",
        discount_value="10.00",
        min_basket="0",
        override="Test",
    )
    make_campaign(public_code="ALLEIN1", min_basket="0", override="Test")
    cart_id = _cart(api, make_product(price="30.00"))
    assert _apply(api, cart_id, "STAPEL1").json()["totals"]["discount"] == money("10.00")
    body = _apply(api, cart_id, "STAPEL2").json()
    assert body["totals"]["discount"] == money("15.00")  # 50 % of 30.00 in all
    assert [v["discount"] for v in body["vouchers"]] == [money("10.00"), money("5.00")]
    _refusal(api, cart_id, "ALLEIN1", "voucher_not_stackable", 409)


def test_lowering_the_basket_below_the_minimum_shows_a_problem(api, make_product, make_campaign):
    make_campaign(public_code="AB60", min_basket="60.00")
    product = make_product(price="40.00")
    cart_id = _cart(api, product, quantity=2)
    assert _apply(api, cart_id, "AB60").status_code == 200
    body = api.patch(f"/carts/{cart_id}/lines/{product.variants.get().sku}", {"quantity": 1}).json()
    assert body["totals"]["discount"] == money("0.00")
    problem = next(p for p in body["problems"] if p["code"] == "voucher_min_basket")
    assert problem["min_basket"] == "60.00" and problem["voucher"] == "…B60"


def test_vouchers_follow_the_cart_at_login(client, make_user, make_product, make_campaign):
    from warenhaus.checkout import services as checkout
    from warenhaus.promotions.models import CartVoucher

    shopper = make_user()
    product = make_product(price="49.97")
    mine, _ = checkout.create_cart(user=shopper)
    checkout.add_line(cart_id=mine.id, user=shopper, sku=product.variants.get().sku, quantity=1)
    make_campaign(public_code="MITNEHMEN")
    anon, _ = checkout.create_cart()
    checkout.add_line(cart_id=anon.id, sku=product.variants.get().sku, quantity=1)
    cart_vouchers.apply_voucher(cart_id=anon.id, code="MITNEHMEN")
    merged = checkout.merge_into_user_cart(cart_id=anon.id, user=shopper)
    assert merged.pk == mine.pk
    assert list(CartVoucher.objects.values_list("cart_id", flat=True)) == [mine.pk]
    assert checkout.view_cart(merged).totals.discount == 10


def test_two_codes_of_one_stackable_campaign_count_once_and_checkout_answers_4xx(
    api, make_product, make_campaign, author, address
):
    """Stacking is across campaigns: a second code of the same campaign is refused at apply, and
    a cart that already holds two (from before this rule) is told, not answered with a 5xx."""
    c = make_campaign(stacking="stackable")
    _batch, (first, second) = services.generate_codes(campaign_id=c.pk, actor=author, count=2)
    cart_id = _cart(api, make_product(price="49.97"))
    assert _apply(api, cart_id, first).status_code == 200
    refused = _refusal(api, cart_id, second, "voucher_not_stackable", 409)
    assert "same promotion" in refused.json()["detail"]
    cart = api.get(f"/carts/{cart_id}").json()
    assert cart["totals"]["discount"] == money("10.00")
    # Both on the cart (a row written directly, as an older cart may hold): checkout counts one.
    from warenhaus.promotions.models import CartVoucher

    CartVoucher.objects.create(cart_id=cart_id, code=services.find_code(second))
    resp = api.post(
        f"/carts/{cart_id}/checkout",
        {"email": "erika@example.de", "shipping_address": address, "payment_method": "invoice"},
        headers={"Idempotency-Key": "two-codes"},
    )
    assert resp.status_code == 409, resp.content
    assert resp.json()["code"] == "voucher_not_stackable"
    assert Redemption.objects.count() == 0
