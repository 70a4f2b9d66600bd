"""Integers beyond the database (issue 13, finding 7): ``total_limit`` of 2^63 was a 500
(``integer out of range`` on PostgreSQL). Every integer input of the API has both bounds in its
schema, and a number outside them is a 4xx problem with a stable code; the console's forms say
so in a sentence."""

from __future__ import annotations

import pytest

HUGE = 2**63
JUST_BEYOND_POSTGRES = 2**31  # a PositiveIntegerField ends at 2^31 - 1

CAMPAIGN = {
    "name": "Sommer",
    "discount_kind": "fixed",
    "discount_value": "5.00",
    "code_mode": "unique",
}


def _problem(resp, status, code):
    assert resp.status_code == status, resp.content
    assert resp.json()["code"] == code
    return resp.json()


def _integers(schema: dict, components: dict, where: str, seen: frozenset = frozenset()):
    """``(where, schema)`` of every integer in a JSON schema, following references."""
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        if name not in seen:
            yield from _integers(components[name], components, name, seen | {name})
        return
    if schema.get("type") == "integer":
        yield where, schema
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            yield from _integers(part, components, where, seen)
    for prop, sub in (schema.get("properties") or {}).items():
        yield from _integers(sub, components, f"{where.split('.')[0]}.{prop}", seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from _integers(schema[key], components, where, seen)


def _integer_inputs(doc: dict):
    components = doc["components"]["schemas"]
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            for param in op.get("parameters", []):
                for where, schema in _integers(
                    param["schema"], components, f"{param['in']}.{param['name']}"
                ):
                    yield f"{method.upper()} {path} {where}", where, schema
            for content in (op.get("requestBody") or {}).get("content", {}).values():
                for where, schema in _integers(content["schema"], components, "body"):
                    yield f"{method.upper()} {path} {where}", where, schema


def test_every_integer_input_of_the_api_has_a_minimum_and_a_maximum(api):
    doc = api.get("/openapi.json").json()
    inputs = list(_integer_inputs(doc))
    assert any(w == "CampaignIn.total_limit" for _, w, _ in inputs) and any(
        w == "query.limit" for _, w, _ in inputs
    )
    unbounded = sorted(
        {name for name, where, s in inputs if ("minimum" not in s or "maximum" not in s)}
    )
    assert unbounded == [], "integer inputs without both bounds: " + ", ".join(unbounded)


@pytest.fixture
def promotions(make_user, api_as):
    return api_as(make_user(roles=["promotions"]))


@pytest.mark.parametrize("value", [HUGE, JUST_BEYOND_POSTGRES])
@pytest.mark.parametrize(
    "field", ["total_limit", "expected_redemptions_per_hour", "per_customer_limit"]
)
def test_a_campaign_with_a_count_beyond_the_database_is_a_422_not_a_500(promotions, field, value):
    body = _problem(
        promotions.post("/campaigns", {**CAMPAIGN, field: value}), 422, "validation_error"
    )
    assert field in body["detail"]
    cid = promotions.post("/campaigns", CAMPAIGN).json()["id"]
    _problem(promotions.patch(f"/campaigns/{cid}", {field: value}), 422, "validation_error")
    assert (
        promotions.post("/campaigns", {**CAMPAIGN, field: 1000}).status_code == 201
    )  # in range: fine


def test_the_largest_counts_a_campaign_takes_are_stored(promotions):
    from warenhaus.promotions.services import COUNT_MAX

    most = {
        f: COUNT_MAX[f]
        for f in ("total_limit", "per_customer_limit", "expected_redemptions_per_hour")
    }
    r = promotions.post("/campaigns", {**CAMPAIGN, **most})
    assert r.status_code == 201, r.content
    assert {f: r.json()[f] for f in most} == most


@pytest.mark.parametrize("value", [HUGE, JUST_BEYOND_POSTGRES, 0])
def test_every_other_integer_input_out_of_range_is_a_problem_with_its_code(
    make_user, api_as, variant, value
):
    admin = api_as(make_user(roles=["admin"]))
    cid = admin.post("/campaigns", CAMPAIGN).json()["id"]
    _problem(
        admin.post(
            f"/campaigns/{cid}/codes", {"count": value}, headers={"Idempotency-Key": f"c-{value}"}
        ),
        422,
        "invalid_count",
    )
    _problem(
        admin.post(
            f"/campaigns/{cid}/codes/import",
            {"codes": ["PARTNER2026A"], "max_uses_per_code": value},
        ),
        422,
        "validation_error",
    )
    if value:  # zero units on hand is a fine stock level
        _problem(
            admin.put(f"/variants/{variant.sku}/stock", {"on_hand": -value}),
            422,
            "invalid_quantity",
        )
        _problem(
            admin.put(f"/variants/{variant.sku}/stock", {"on_hand": value}), 422, "invalid_quantity"
        )
    product = {
        "title": "Neu",
        "category": variant.product.category.slug,
        "variants": [
            {
                "sku": "NEU-1",
                "price": {"amount": "9.99", "currency": "EUR"},
                "on_hand": -value or -1,
            }
        ],
    }
    _problem(admin.post("/products", product), 422, "invalid_quantity")
    cart = admin.post("/carts").json()["id"]
    _problem(
        admin.post(f"/carts/{cart}/lines", {"sku": variant.sku, "quantity": value}),
        422,
        "invalid_quantity",
    )
    _problem(
        admin.patch(f"/carts/{cart}/lines/{variant.sku}", {"quantity": value}),
        422,
        "invalid_quantity",
    )
    deal = {
        "sku": variant.sku,
        "deal_price": {"amount": "9.99", "currency": "EUR"},
        "units": 1,
        "starts_at": "2030-01-01T00:00:00+00:00",
        "ends_at": "2030-01-02T00:00:00+00:00",
    }
    for field in (
        "units",
        "limit_per_customer",
        "hold_minutes",
        "offer_minutes",
        "admissions_per_minute",
    ):
        _problem(admin.post("/deals", {**deal, field: value}), 422, "validation_error")
    for path in (
        "/products",
        "/orders",
        "/campaigns",
        f"/campaigns/{cid}/redemptions",
        f"/campaigns/{cid}/alerts",
        "/alerts",
        "/deals",
        "/remediations",
    ):
        _problem(admin.get(path, limit=value), 400, "invalid_limit")


def test_the_campaign_form_refuses_a_huge_limit_with_a_sentence(make_user, client):
    from warenhaus.promotions.models import Campaign

    client.force_login(make_user(roles=["promotions"]))
    form = {
        "name": "Sommer",
        "discount_kind": "fixed",
        "discount_value": "5,00",
        "customer_eligibility": "any",
        "channels": ["web"],
        "stacking": "exclusive",
        "code_mode": "unique",
        "total_limit": str(HUGE),
        "expected_redemptions_per_hour": str(JUST_BEYOND_POSTGRES),
    }
    r = client.post("/en/console/promotions/new/", form)
    assert r.status_code == 422
    html = r.content.decode()
    assert (
        "Ensure this value is less than or equal to 100000000" in html
        and "less than or equal to 1000000" in html
    )
    assert not Campaign.objects.exists()
    r = client.post("/console/promotions/new/", form)  # German
    assert r.status_code == 422 and "kleiner oder gleich 100000000" in r.content.decode()
