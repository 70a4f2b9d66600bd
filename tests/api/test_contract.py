"""The typed contract in the OpenAPI document: shapes of every answer and of problems, money as
{"amount", "currency"}, the bearer scheme, interactive docs without internet, 405 with Allow."""

from __future__ import annotations

import re


def test_every_answer_of_every_route_has_a_shape_and_problems_have_the_problem_schema(api):
    doc = api.get("/openapi.json").json()
    assert {"type", "title", "status", "detail", "code"} <= set(
        doc["components"]["schemas"]["Problem"]["properties"]
    )
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            for status, answer in op["responses"].items():
                where = f"{method.upper()} {path} {status}"
                assert answer.get("content"), where
                (media, spec), *_ = answer["content"].items()
                if int(status) >= 400:
                    assert media == "application/problem+json", where
                    assert spec["schema"] == {"$ref": "#/components/schemas/Problem"}, where
                elif media == "application/json":
                    schema = spec["schema"]
                    assert "$ref" in schema or schema.get("type") not in (None, "object"), where
            assert {"400", "422", "429"} <= set(op["responses"]), f"{method} {path}"


def test_routes_that_need_a_token_declare_the_bearer_scheme(api):
    doc = api.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "a token from POST /api/v1/auth/token",
    }
    assert doc["paths"]["/api/v1/me"]["get"]["security"] == [{"bearer": []}]
    assert doc["paths"]["/api/v1/campaigns"]["post"]["security"] == [{"bearer": []}]
    assert {} in doc["paths"]["/api/v1/carts"]["post"]["security"]
    assert "security" not in doc["paths"]["/api/v1/products"]["get"]


def test_money_in_the_document_is_an_object_with_amount_and_currency(api):
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    for name in ("Money", "PositiveMoney", "MoneyOut"):
        assert set(schemas[name]["required"]) == {"amount", "currency"}, name
        currency = schemas[name]["properties"]["currency"]
        assert currency.get("enum") == ["EUR"] or currency.get("const") == "EUR", name


def test_a_bare_string_where_money_is_expected_is_a_422_that_names_the_shape(make_user, api_as):
    catalog = api_as(make_user(roles=["catalog"]))
    resp = catalog.post(
        "/products",
        {"title": "Neu", "category": "x", "variants": [{"sku": "NEU-1", "price": "9.99"}]},
    )
    assert resp.status_code == 422
    body = resp.json()
    assert body["code"] == "validation_error"
    assert '{"amount": "12.50", "currency": "EUR"}' in body["detail"]
    assert "variants.0.price" in body["detail"]


def test_a_currency_the_shop_does_not_take_is_refused(make_user, api_as):
    catalog = api_as(make_user(roles=["catalog"]))
    resp = catalog.post(
        "/products",
        {
            "title": "Neu",
            "category": "x",
            "variants": [{"sku": "NEU-1", "price": {"amount": "9.99", "currency": "USD"}}],
        },
    )
    assert resp.status_code == 422 and resp.json()["code"] == "validation_error"


def test_a_wrong_method_is_a_405_with_allow(api):
    resp = api.client.delete("/api/v1/health")
    assert resp.status_code == 405
    assert resp.json()["code"] == "method_not_allowed"
    assert resp["Allow"] == "GET"


def test_the_interactive_docs_load_swagger_ui_from_the_shop_not_a_cdn(api):
    page = api.client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert not re.search(r"https?://", html.split("<body", 1)[1].split("</body>")[0])
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert api.client.get(asset).status_code == 200, asset
    assert "/static/ninja/swagger-ui-bundle.js" in html
