"""Bad input: each gets a 4xx problem with a stable code, and changes nothing."""

from __future__ import annotations

import json

import pytest

from warenhaus.catalog.models import Variant
from warenhaus.checkout.models import CartLine
from warenhaus.core.models import AuditEntry
from warenhaus.inventory.models import Stock
from warenhaus.orders.models import Order


def _state():
    return (
        Order.objects.count(),
        CartLine.objects.count(),
        list(Stock.objects.order_by("pk").values_list("on_hand", "allocated")),
        list(Variant.objects.order_by("pk").values_list("price", flat=True)),
        AuditEntry.objects.count(),
    )


@pytest.fixture
def cart(api, variant):
    return api.post("/carts").json()["id"]


@pytest.fixture
def staff(make_user, api_as):
    return api_as(make_user(roles=["admin"]))


def _problem(resp, status, code):
    assert resp.status_code == status, resp.content
    assert resp["Content-Type"].startswith("application/problem+json")
    body = resp.json()
    assert body["code"] == code, body
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert body["status"] == status
    return body


CART_CASES = [
    ("unknown sku", {"sku": "NOPE-404", "quantity": 1}, 404, "sku_not_found"),
    ("zero quantity", {"sku": "{sku}", "quantity": 0}, 422, "invalid_quantity"),
    ("negative quantity", {"sku": "{sku}", "quantity": -3}, 422, "invalid_quantity"),
    ("absurd quantity", {"sku": "{sku}", "quantity": 10**12}, 422, "invalid_quantity"),
    ("quantity as text", {"sku": "{sku}", "quantity": "2"}, 422, "validation_error"),
    ("quantity as float", {"sku": "{sku}", "quantity": 1.5}, 422, "validation_error"),
    ("missing sku", {"quantity": 1}, 422, "validation_error"),
    ("more than in stock", {"sku": "{sku}", "quantity": 11}, 409, "out_of_stock"),
]


@pytest.mark.parametrize("name,body,status,code", CART_CASES, ids=[c[0] for c in CART_CASES])
def test_bad_cart_lines(api, cart, variant, name, body, status, code):
    body = {k: (v.format(sku=variant.sku) if isinstance(v, str) else v) for k, v in body.items()}
    before = _state()
    _problem(api.post(f"/carts/{cart}/lines", body), status, code)
    assert _state() == before


MONEY_CASES = [
    ("three decimals", "12.345", "invalid_money"),
    ("text", "zwölf", "invalid_money"),
    ("negative", "-5.00", "invalid_money"),
    ("zero", "0", "invalid_money"),
    ("absurd", "100000000", "invalid_money"),
    ("infinity", "Infinity", "invalid_money"),
    ("comma", "12,99", "invalid_money"),
]


@pytest.mark.parametrize("name,amount,code", MONEY_CASES, ids=[c[0] for c in MONEY_CASES])
def test_malformed_money(staff, variant, name, amount, code):
    before = _state()
    _problem(staff.put(f"/variants/{variant.sku}/price", {"amount": amount}), 422, code)
    assert _state() == before


def test_money_as_json_number_is_refused(staff, variant):
    before = _state()
    _problem(staff.put(f"/variants/{variant.sku}/price", {"amount": 12.5}), 422, "validation_error")
    assert _state() == before


def test_wrong_currency_is_refused(staff, variant):
    _problem(
        staff.put(f"/variants/{variant.sku}/price", {"amount": "12.50", "currency": "USD"}),
        422,
        "validation_error",
    )


def test_negative_stock_is_refused(staff, variant):
    before = _state()
    _problem(staff.put(f"/variants/{variant.sku}/stock", {"on_hand": -1}), 422, "invalid_quantity")
    assert _state() == before


def test_wrong_content_type(client, cart, variant):
    before = _state()
    resp = client.post(
        f"/api/v1/carts/{cart}/lines",
        data=f"sku={variant.sku}&quantity=1",
        content_type="application/x-www-form-urlencoded",
    )
    _problem(resp, 415, "unsupported_media_type")
    assert _state() == before


def test_malformed_json(client, cart):
    before = _state()
    resp = client.post(
        f"/api/v1/carts/{cart}/lines", data="{not json", content_type="application/json"
    )
    _problem(resp, 400, "malformed_json")
    assert _state() == before


def test_oversized_body(client, cart, variant):
    before = _state()
    body = json.dumps({"sku": variant.sku, "quantity": 1, "padding": "x" * 200_000})
    _problem(
        client.post(f"/api/v1/carts/{cart}/lines", data=body, content_type="application/json"),
        413,
        "payload_too_large",
    )
    assert _state() == before


def test_unknown_endpoint_and_method(api, client, db):
    _problem(api.get("/no/such/thing"), 404, "not_found")
    _problem(
        client.put("/api/v1/products", data="{}", content_type="application/json"),
        405,
        "method_not_allowed",
    )


def test_missing_idempotency_key(api, cart, variant, checkout_body):
    api.post(f"/carts/{cart}/lines", {"sku": variant.sku, "quantity": 1})
    before = _state()
    _problem(api.post(f"/carts/{cart}/checkout", checkout_body), 400, "idempotency_key_missing")
    assert _state() == before


def test_repeated_idempotency_key(api, cart, variant, checkout_body):
    api.post(f"/carts/{cart}/lines", {"sku": variant.sku, "quantity": 1})
    first = api.post(f"/carts/{cart}/checkout", checkout_body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    before = _state()
    again = api.post(f"/carts/{cart}/checkout", checkout_body, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    other = dict(checkout_body, email="jemand.anders@example.de")
    _problem(
        api.post(f"/carts/{cart}/checkout", other, headers={"Idempotency-Key": "k-1"}),
        422,
        "idempotency_key_reused",
    )
    assert _state() == before


def test_too_long_idempotency_key(api, cart, variant, checkout_body):
    api.post(f"/carts/{cart}/lines", {"sku": variant.sku, "quantity": 1})
    _problem(
        api.post(f"/carts/{cart}/checkout", checkout_body, headers={"Idempotency-Key": "k" * 500}),
        400,
        "idempotency_key_invalid",
    )


def test_another_persons_cart_and_order(make_user, api_as, variant, address):
    from warenhaus.checkout import services as checkout

    erika, max_ = make_user(), make_user()
    cart, _ = checkout.create_cart(user=erika)
    checkout.add_line(cart_id=cart.id, user=erika, sku=variant.sku, quantity=1)
    intruder = api_as(max_)
    before = _state()
    _problem(intruder.get(f"/carts/{cart.id}"), 404, "cart_not_found")
    _problem(
        intruder.post(f"/carts/{cart.id}/lines", {"sku": variant.sku, "quantity": 1}),
        404,
        "cart_not_found",
    )
    _problem(intruder.delete(f"/carts/{cart.id}/lines/{variant.sku}"), 404, "cart_not_found")
    _problem(
        intruder.post(
            f"/carts/{cart.id}/checkout",
            {"email": max_.email, "shipping_address": address, "payment_method": "invoice"},
            headers={"Idempotency-Key": "x"},
        ),
        404,
        "cart_not_found",
    )
    assert _state() == before
    order = checkout.place_order(
        cart_id=cart.id,
        user=erika,
        email=erika.email,
        shipping_address=address,
        payment_method="invoice",
    )
    _problem(intruder.get(f"/orders/{order.number}"), 404, "order_not_found")
    assert intruder.get("/orders").json()["items"] == []


def test_bad_token(api, db):
    api.token = "wh_not-a-real-token"
    _problem(api.get("/me"), 401, "invalid_token")
    _problem(
        api.client.get("/api/v1/me", headers={"Authorization": "Basic abc"}), 401, "invalid_token"
    )


def test_bad_checkout_inputs(api, cart, variant, checkout_body):
    api.post(f"/carts/{cart}/lines", {"sku": variant.sku, "quantity": 1})
    before = _state()
    cases = [
        (dict(checkout_body, email="not-an-email"), 422, "invalid_email"),
        (dict(checkout_body, payment_method="bitcoin"), 422, "invalid_payment_method"),
        (dict(checkout_body, shipping_method="teleport"), 422, "invalid_shipping_method"),
        (
            dict(
                checkout_body,
                shipping_address=dict(checkout_body["shipping_address"], postal_code="1234"),
            ),
            422,
            "invalid_address",
        ),
        (
            dict(
                checkout_body,
                shipping_address=dict(checkout_body["shipping_address"], country="US"),
            ),
            422,
            "country_not_served",
        ),
        (
            dict(
                checkout_body, shipping_address=dict(checkout_body["shipping_address"], street="")
            ),
            422,
            "invalid_address",
        ),
    ]
    for i, (body, status, code) in enumerate(cases):
        _problem(
            api.post(f"/carts/{cart}/checkout", body, headers={"Idempotency-Key": f"bad-{i}"}),
            status,
            code,
        )
    assert _state() == before


def test_pagination_bad_limit_and_cursor(api, db):
    _problem(api.get("/products", limit=0), 400, "invalid_limit")
    _problem(api.get("/products", limit=1000), 400, "invalid_limit")
    _problem(api.get("/products", cursor="!!!"), 400, "invalid_cursor")


@pytest.fixture
def promotions_staff(make_user, api_as):
    return api_as(make_user(roles=["promotions"])), api_as(make_user(roles=["promotions_approver"]))


def test_acknowledging_an_unknown_alert(promotions_staff):
    _writer, approver = promotions_staff
    before = _state()
    _problem(approver.post("/alerts/999999/acknowledge"), 404, "alert_not_found")
    _problem(approver.post("/alerts/kein-alarm/acknowledge"), 404, "alert_not_found")
    _problem(approver.get("/alerts", limit=0), 400, "invalid_limit")
    _problem(approver.get("/alerts", open="vielleicht"), 422, "validation_error")
    assert _state() == before


def _draft(writer, **fields):
    body = {
        "name": "Entwurf",
        "discount_kind": "fixed",
        "discount_value": "5.00",
        "code_mode": "unique",
        **fields,
    }
    resp = writer.post("/campaigns", body)
    assert resp.status_code == 201, resp.content
    return resp.json()["id"]


CAMPAIGN_PATCH_CASES = [
    ("empty name", {"name": "  "}, 422, "validation_error"),
    ("unknown kind", {"discount_kind": "gratis"}, 422, "validation_error"),
    (
        "percent above 100",
        {"discount_kind": "percent", "discount_value": "150"},
        422,
        "validation_error",
    ),
    ("money with three decimals", {"discount_value": "1.005"}, 422, "invalid_money"),
    ("negative budget", {"budget": {"amount": "-10", "currency": "EUR"}}, 422, "invalid_money"),
    ("limit zero", {"total_limit": 0}, 422, "validation_error"),
    ("limit as text", {"total_limit": "5"}, 422, "validation_error"),
    ("no channels", {"channels": []}, 422, "validation_error"),
    ("unknown channel", {"channels": ["fax"]}, 422, "validation_error"),
    (
        "end before start",
        {"valid_from": "2026-07-01T00:00:00+00:00", "valid_until": "2026-06-01T00:00:00+00:00"},
        422,
        "validation_error",
    ),
    ("time without offset", {"valid_until": "2026-07-01T00:00:00"}, 422, "validation_error"),
    ("start cleared", {"valid_from": None}, 422, "validation_error"),
    ("unknown category", {"eligible_categories": ["gibt-es-nicht"]}, 422, "unknown_category"),
    (
        "unknown monitor",
        {"monitor_settings": {"wetter": {"enabled": False}}},
        422,
        "validation_error",
    ),
    ("public code on unique", {"public_code": "SOMMER2026"}, 422, "validation_error"),
    ("public mode without code", {"code_mode": "public"}, 422, "validation_error"),
    (
        "public code of generated shape",
        {"code_mode": "public", "public_code": "ABCDEFGHJKMN"},
        422,
        "invalid_code",
    ),
]


@pytest.mark.parametrize(
    "name,body,status,code", CAMPAIGN_PATCH_CASES, ids=[c[0] for c in CAMPAIGN_PATCH_CASES]
)
def test_bad_campaign_edits(promotions_staff, name, body, status, code):
    writer, _approver = promotions_staff
    pk = _draft(writer)
    before = (_state(), writer.get(f"/campaigns/{pk}").json())
    _problem(writer.patch(f"/campaigns/{pk}", body), status, code)
    assert (_state(), writer.get(f"/campaigns/{pk}").json()) == before


def test_editing_an_unknown_or_live_campaign(promotions_staff):
    writer, approver = promotions_staff
    _problem(writer.patch("/campaigns/999999", {"name": "x"}), 404, "campaign_not_found")
    _problem(writer.patch("/campaigns/abc", {"name": "x"}), 404, "campaign_not_found")
    pk = _draft(
        writer,
        total_limit=10,
        budget={"amount": "50.00", "currency": "EUR"},
        min_basket={"amount": "20.00", "currency": "EUR"},
        valid_until="2099-01-01T00:00:00+00:00",
    )
    assert approver.post(f"/campaigns/{pk}/approve", {}).status_code == 200
    before = _state()
    body = _problem(
        writer.patch(f"/campaigns/{pk}", {"discount_value": "400.00"}), 409, "campaign_not_editable"
    )
    assert body["current_status"] == "approved"
    assert _state() == before
