"""Flash deals over the API, as in API.md: staff make deals; shoppers read them, queue, poll,
join the wait list; every bad input is a 4xx problem with a stable code."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True, params=["fast lane", "django"])
def lane(request, settings):
    """Every case twice: joins and polls answered by the fast lane (as in production), and by
    Django's request cycle (DEALS_FAST_LANE off)."""
    settings.DEALS_FAST_LANE = request.param == "fast lane"
    return request.param


@pytest.fixture
def pricing(make_user):
    return make_user(roles=["pricing"])


@pytest.fixture
def variant_sku(make_product):
    return make_product(price="119.99", on_hand=20).variants.get().sku


def _body(variant, **over):
    start = timezone.now()
    return {
        "sku": variant,
        "deal_price": {"amount": "49.97", "currency": "EUR"},
        "units": 2,
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(),
        "limit_per_customer": 1,
        "hold_minutes": 10,
        **over,
    }


def test_staff_make_a_deal_and_shoppers_queue_into_holds(
    api_as, api, pricing, variant_sku, make_user, lane
):
    r = api_as(pricing).post("/deals", _body(variant_sku))
    assert r.status_code == 201, r.content
    deal = r.json()
    assert (
        deal["price"] == {"amount": "49.97", "currency": "EUR"}
        and deal["regular_price"]["amount"] == "119.99"
    )
    assert (
        deal["lowest_price_30_days"]["amount"] == "119.99"
        and deal["units_left"] == 2
        and deal["state"] == "live"
    )
    assert api.get(f"/deals/{deal['id']}").json()["id"] == deal["id"]
    assert [d["id"] for d in api.get("/deals").json()["items"]] == [deal["id"]]

    shopper = make_user(email="erika@example.de")
    client = api_as(shopper)
    r = client.post(f"/deals/{deal['id']}/queue", {"quantity": 1})
    assert r.status_code == 201 and r.json()["state"] == "admitted"
    assert getattr(r, "fast_lane", False) == (lane == "fast lane")
    ticket = r.json()
    polled = client.get(f"/deals/{deal['id']}/queue/{ticket['ticket']}").json()
    assert (
        polled["state"] == "admitted"
        and polled["hold"]["quantity"] == 1
        and polled["cart_id"] == ticket["cart_id"]
    )
    cart = client.get(f"/carts/{ticket['cart_id']}").json()
    [line] = cart["lines"]
    assert (
        line["unit_price"]["amount"] == "49.97"
        and line["hold"]["expires_at"] == polled["hold"]["expires_at"]
    )
    # anonymous shoppers queue with an e-mail address, or with their cart
    anon = api.post(f"/deals/{deal['id']}/queue", {"email": "gast@example.de"})
    assert anon.status_code == 201 and anon.json()["state"] == "admitted"
    own_cart = api.post("/carts").json()["id"]
    late = api.post(f"/deals/{deal['id']}/queue", {"cart_id": own_cart})
    assert (
        late.status_code == 201
        and late.json()["state"] == "waiting"
        and late.json()["position"] == 1
    )
    # the wait list
    w = api.post(f"/deals/{deal['id']}/waitlist", {"email": "warte@example.de"})
    assert w.status_code == 201 and w.json()["position"] == 1
    assert (
        api.get(f"/deals/{deal['id']}/waitlist/{w.json()['entry']}").json()["status"] == "waiting"
    )
    # staff watch it
    board = api_as(pricing).get(f"/deals/{deal['id']}/dashboard").json()
    assert board["held"] == 2 and board["queue_length"] == 1 and board["waitlist"]["waiting"] == 1


def test_sold_out_is_an_answer_not_an_error(api_as, api, pricing, variant_sku, make_user, address):
    deal = api_as(pricing).post("/deals", _body(variant_sku, units=1)).json()
    buyer = make_user(email="k@example.de")
    t = api_as(buyer).post(f"/deals/{deal['id']}/queue", {}).json()
    order = api_as(buyer).post(
        f"/carts/{t['cart_id']}/checkout",
        {"email": buyer.email, "shipping_address": address, "payment_method": "invoice"},
        headers={"Idempotency-Key": "deal-1"},
    )
    assert order.status_code == 201, order.content
    r = api.post(f"/deals/{deal['id']}/queue", {"email": "spaet@example.de"})
    assert (
        r.status_code == 201
        and r.json()["state"] == "sold_out"
        and r.json()["waitlist"]["position"] == 1
    )
    assert api.get(f"/deals/{deal['id']}").json()["state"] == "sold_out"
    w = api.post(f"/deals/{deal['id']}/waitlist", {"email": "noch-spaeter@example.de"})
    assert w.status_code == 201 and w.json()["position"] == 2
    # whoever bought the limit gets no place for a unit they could not buy, in line or on the wait list
    for path in ("queue", "waitlist"):
        r = api_as(buyer).post(f"/deals/{deal['id']}/{path}", {})
        assert (r.status_code, r.json()["code"], r.json()["reason"]) == (
            409,
            "limit_per_customer",
            "user",
        ), (path, r.content)


def test_the_wait_list_is_for_when_nothing_is_free(api_as, api, pricing, variant_sku):
    """A place on the wait list closes the line to everyone who comes later: while units are
    free (or before the start) nobody gets one, and the line stays open."""
    deal = api_as(pricing).post("/deals", _body(variant_sku, units=2)).json()
    soon = (
        api_as(pricing)
        .post(
            "/deals",
            _body(
                variant_sku,
                starts_at=(timezone.now() + timedelta(hours=1)).isoformat(),
                ends_at=(timezone.now() + timedelta(hours=2)).isoformat(),
            ),
        )
        .json()
    )
    for d in (deal, soon):
        r = api.post(f"/deals/{d['id']}/waitlist", {"email": "zu-frueh@example.de"})
        assert (r.status_code, r.json()["code"]) == (409, "deal_not_sold_out"), r.content
    assert (
        api.post(f"/deals/{deal['id']}/queue", {"email": "a@example.de"}).json()["state"]
        == "admitted"
    )
    assert (
        api.post(f"/deals/{deal['id']}/queue", {"email": "b@example.de"}).json()["state"]
        == "admitted"
    )
    # nothing free now: the wait list takes people (units held for others may still come back)
    r = api.post(f"/deals/{deal['id']}/waitlist", {"email": "jetzt@example.de"})
    assert r.status_code == 201 and r.json()["position"] == 1


@pytest.mark.parametrize(
    "over, status, code",
    [
        ({"deal_price": {"amount": "119.99", "currency": "EUR"}}, 422, "deal_price_not_lower"),
        ({"deal_price": {"amount": "abc", "currency": "EUR"}}, 422, "invalid_money"),
        ({"deal_price": 49.97}, 422, "validation_error"),
        ({"units": 0}, 422, "validation_error"),
        ({"units": 21}, 409, "out_of_stock"),
        ({"sku": "GIBT-ES-NICHT"}, 404, "sku_not_found"),
        ({"ends_at": "2020-01-01T00:00:00+00:00"}, 422, "validation_error"),
        ({"starts_at": "morgen"}, 422, "validation_error"),
        (
            {"starts_at": "2027-02-30T10:00:00+00:00"},
            422,
            "validation_error",
        ),  # well-formed, but no such day
        ({"ends_at": "2027-01-01T25:00:00+00:00"}, 422, "validation_error"),
        (
            {"starts_at": "2020-01-01T00:00:00+00:00", "ends_at": "2020-01-02T00:00:00+00:00"},
            422,
            "validation_error",
        ),  # over already
        ({"limit_per_customer": 0}, 422, "validation_error"),
        ({"hold_minutes": 100000}, 422, "validation_error"),
    ],
)
def test_bad_deals_are_refused(api_as, pricing, variant_sku, over, status, code):
    r = api_as(pricing).post("/deals", _body(variant_sku, **over))
    assert r.status_code == status and r.json()["code"] == code, r.content


def test_bad_queueing_is_refused(api_as, api, pricing, variant_sku, make_user):
    deal = api_as(pricing).post("/deals", _body(variant_sku)).json()
    assert api.post(f"/deals/{deal['id']}/queue", {}).json()["code"] == "identity_required"
    r = api.post(f"/deals/{deal['id']}/queue", {"email": "a@example.de", "quantity": 2})
    assert r.status_code == 409 and r.json()["code"] == "limit_per_customer"
    assert (
        api.post(f"/deals/{deal['id']}/queue", {"cart_id": "nope"}).json()["code"]
        == "cart_not_found"
    )
    assert (
        api.post("/deals/99999/queue", {"email": "a@example.de"}).json()["code"] == "deal_not_found"
    )
    assert api.get("/deals/abc").json()["code"] == "deal_not_found"
    assert api.get(f"/deals/{deal['id']}/queue/nope").json()["code"] == "ticket_not_found"
    assert (
        api.get(f"/deals/{deal['id']}/waitlist/nope").json()["code"] == "waitlist_entry_not_found"
    )
    assert api.post(f"/deals/{deal['id']}/waitlist", {}).json()["code"] == "email_required"
    assert (
        api.post(
            f"/deals/{deal['id']}/queue", {"email": "x@example.de", "quantity": "1"}
        ).status_code
        == 422
    )
    assert api_as(make_user()).post("/deals", _body(variant_sku)).status_code == 403
    r = api_as(pricing).post(f"/deals/{deal['id']}/cancel", {"reason": "Fehler im Preis"})
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert (
        api.post(f"/deals/{deal['id']}/queue", {"email": "b@example.de"}).json()["code"]
        == "deal_ended"
    )
