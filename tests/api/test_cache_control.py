"""What caches may keep (issue 13, finding 8): answers that carry a token or personal data say
``Cache-Control: no-store`` (API, the waiting room's fast lane, pages, problems and 429s); reads
that are the same for everyone say ``no-cache`` (kept, but asked for again each time)."""

from __future__ import annotations

import pytest

from tests.deals.conftest import deal, make_deal  # noqa: F401  (fixtures)

PASSWORD = "Geheim-Passwort-1"


def _no_store(resp):
    assert resp["Cache-Control"] == "no-store", (resp.status_code, resp.get("Cache-Control"))
    return resp


@pytest.fixture
def order(api, variant, checkout_body):
    cart = api.post("/carts").json()["id"]
    api.post(f"/carts/{cart}/lines", {"sku": variant.sku, "quantity": 1})
    return cart, api.post(
        f"/carts/{cart}/checkout", checkout_body, headers={"Idempotency-Key": "order-1"}
    )


def test_a_token_and_the_callers_account_are_not_stored(api, make_user):
    user = make_user(email="erika@example.de", password=PASSWORD)
    token = _no_store(api.post("/auth/token", {"email": user.email, "password": PASSWORD}))
    assert token.status_code == 200 and token.json()["token"]
    api.token = token.json()["token"]
    assert _no_store(api.get("/me")).json()["email"] == "erika@example.de"


def test_carts_are_not_stored(api, variant):
    made = _no_store(api.post("/carts"))
    cart = made.json()["id"]
    _no_store(api.post(f"/carts/{cart}/lines", {"sku": variant.sku, "quantity": 1}))
    assert _no_store(api.get(f"/carts/{cart}")).json()["lines"][0]["sku"] == variant.sku


def test_orders_are_not_stored_neither_placed_replayed_nor_read(
    api, api_as, make_user, variant, checkout_body, order
):
    cart, placed = order
    assert _no_store(placed).status_code == 201
    replay = api.post(
        f"/carts/{cart}/checkout", checkout_body, headers={"Idempotency-Key": "order-1"}
    )
    assert replay["Idempotent-Replayed"] == "true"
    _no_store(replay)
    erika = make_user()
    mine = api_as(erika)
    cart = mine.post("/carts").json()["id"]
    mine.post(f"/carts/{cart}/lines", {"sku": variant.sku, "quantity": 1})
    number = mine.post(
        f"/carts/{cart}/checkout",
        {**checkout_body, "email": erika.email},
        headers={"Idempotency-Key": "o-2"},
    ).json()["number"]
    _no_store(mine.get(f"/orders/{number}"))
    _no_store(mine.get("/orders"))


def test_deal_queue_joins_and_polls_through_the_fast_lane_are_not_stored(api, deal):  # noqa: F811
    joined = api.post(f"/deals/{deal}/queue", {"email": "erika@example.de"})
    assert joined.fast_lane and joined.status_code == 201
    _no_store(joined)
    polled = api.get(f"/deals/{deal}/queue/{joined.json()['ticket']}")
    assert polled.fast_lane and polled.json()["cart_id"]
    _no_store(polled)
    unknown = api.get(f"/deals/{deal}/queue/gibt-es-nicht")
    assert unknown.fast_lane and unknown.status_code == 404
    _no_store(unknown)


def test_wait_list_places_and_staff_answers_are_not_stored(api, api_as, make_user, make_product):
    from datetime import timedelta

    from django.utils import timezone

    from warenhaus.deals.services import create_deal

    start = timezone.now() - timedelta(seconds=1)
    sku = make_product(price="119.99", on_hand=5).variants.get().sku
    one = create_deal(
        actor=None,
        sku=sku,
        deal_price="49.97",
        units=1,
        starts_at=start,
        ends_at=start + timedelta(hours=1),
    ).pk
    assert (
        api.post(f"/deals/{one}/queue", {"email": "erste@example.de"}).json()["state"] == "admitted"
    )  # the last unit is held
    place = _no_store(api.post(f"/deals/{one}/waitlist", {"email": "zweite@example.de"}))
    assert place.status_code == 201, place.content
    _no_store(api.get(f"/deals/{one}/waitlist/{place.json()['entry']}"))
    staff = api_as(make_user(roles=["admin"]))
    _no_store(staff.get("/campaigns"))
    _no_store(staff.get(f"/deals/{one}/dashboard"))
    _no_store(staff.get("/orders", all="true"))


def test_problems_and_refusals_are_not_stored(api, settings):
    api.token = "falsch"
    _no_store(api.get("/me"))
    api.token = None
    _no_store(api.get("/carts/gibt-es-nicht"))
    _no_store(api.post("/carts/x/lines", {"sku": 1}))
    settings.LOGIN_RATE_LIMIT = 1
    for _ in range(3):
        refused = api.post("/auth/token", {"email": "erika@example.de", "password": "falsch"})
    assert refused.status_code == 429
    _no_store(refused)


def test_public_reads_may_be_kept_but_are_asked_for_again(api, variant, deal):  # noqa: F811
    for path in (
        "/products",
        f"/products/{variant.product.slug}",
        f"/deals/{deal}",
        "/deals",
        "/health",
        "/openapi.json",
    ):
        resp = api.get(path)
        assert resp.status_code == 200 and resp["Cache-Control"] == "no-cache", path


def test_pages_are_not_stored(client, make_user, variant, address):
    from warenhaus.checkout import services as checkout

    erika = make_user()
    cart, _ = checkout.create_cart(user=erika)
    checkout.add_line(cart_id=cart.id, user=erika, sku=variant.sku, quantity=1)
    number = checkout.place_order(
        cart_id=cart.id,
        user=erika,
        email=erika.email,
        shipping_address=address,
        payment_method="invoice",
    ).number
    client.force_login(erika)
    for path in (
        "/",
        "/cart/",
        "/checkout/",
        "/account/orders/",
        f"/account/orders/{number}/",
        f"/product/{variant.product.slug}/",
    ):
        resp = client.get(path)
        assert resp.status_code in (200, 302), path
        assert resp["Cache-Control"] == "no-store", path
    client.force_login(make_user(roles=["support"]))
    for path in ("/console/", f"/console/orders/{number}/"):
        assert _no_store(client.get(path)).status_code == 200


def test_the_waiting_room_page_is_not_stored(client, deal):  # noqa: F811
    joined = client.post(f"/deals/{deal}/join/", {"quantity": "1"})
    assert joined.status_code == 302
    _no_store(joined)
    _no_store(client.get(joined["Location"]))
