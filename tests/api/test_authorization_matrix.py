"""The authorisation matrix: every API endpoint against every kind of caller.

Who may do what comes from ``warenhaus.accounts.roles.CAPABILITIES``; this test derives the
expected answer for each (endpoint, caller) pair from that table, so a role that gains or loses
a capability changes the expectation here too. A final test makes sure no endpoint of the
OpenAPI document is missing from the matrix.
"""

from __future__ import annotations

import itertools

import pytest

from warenhaus.accounts.roles import CAPABILITIES, ROLES
from warenhaus.checkout import vouchers as cart_vouchers

CALLERS = ["anonymous", "owner", "other_shopper", *ROLES]
_n = itertools.count()


def _allowed(capability: str, caller: str) -> bool:
    return caller == "admin" or caller in CAPABILITIES[capability]


# (method, path template, body, rule)
# rule: "public" | "user" | ("cap", capability) | "cart_owner" | "order_owner_or", capability
ENDPOINTS = [
    ("get", "/health", None, "public"),
    ("post", "/auth/register", "register", "public"),
    ("post", "/auth/token", "token", "public"),
    ("post", "/auth/login-link", "login_link", "public"),
    ("post", "/auth/login-link/confirm", "login_link_key", "public"),
    ("get", "/me", None, "user"),
    ("get", "/products", None, "public"),
    ("get", "/products/{slug}", None, "public"),
    ("post", "/products", "product", ("cap", "catalog.edit")),
    ("patch", "/products/{slug}", {"title": "Neuer Titel"}, ("cap", "catalog.edit")),
    ("put", "/variants/{sku}/price", {"amount": "59.99"}, ("cap", "price.edit")),
    ("put", "/variants/{sku}/stock", {"on_hand": 25}, ("cap", "stock.edit")),
    ("post", "/carts", None, "public"),
    ("get", "/carts/{anon_cart}", None, "public"),
    ("get", "/carts/{cart}", None, "cart_owner"),
    ("post", "/carts/{cart}/lines", "line", "cart_owner"),
    ("patch", "/carts/{cart}/lines/{sku}", {"quantity": 2}, "cart_owner"),
    ("delete", "/carts/{cart}/lines/{sku}", None, "cart_owner"),
    ("put", "/carts/{cart}/shipping", {"shipping_method": "express"}, "cart_owner"),
    ("post", "/carts/{cart}/checkout", "checkout", "cart_owner"),
    ("get", "/orders", None, "user"),
    ("get", "/orders/{order}", None, ("owner_or", "orders.view_all")),
    ("post", "/orders/{order}/cancel", {"reason": "Kundenwunsch"}, ("cap", "orders.cancel")),
    ("post", "/orders/{order}/hold", {"reason": "Prüfung"}, ("cap", "orders.hold")),
    ("post", "/orders/{order}/release", "held", ("cap", "orders.release")),
    ("post", "/orders/{order}/ship", None, ("cap", "orders.ship")),
    ("post", "/orders/{order}/deliver", "shipped", ("cap", "orders.ship")),
    ("post", "/carts/{cart}/vouchers", "voucher", "cart_owner"),
    ("delete", "/carts/{cart}/vouchers/{applied_code}", None, "cart_owner"),
    ("post", "/campaigns", "campaign", ("cap", "promotions.edit")),
    ("get", "/campaigns", None, ("cap", "promotions.view")),
    ("get", "/campaigns/{approved}", None, ("cap", "promotions.view")),
    ("post", "/campaigns/{draft}/approve", {"override_reason": ""}, ("cap", "promotions.approve")),
    ("post", "/campaigns/{approved}/pause", {"reason": "Leck"}, ("cap", "promotions.block")),
    ("post", "/campaigns/{paused}/resume", {"reason": "geprüft"}, ("cap", "promotions.approve")),
    ("post", "/campaigns/{approved}/revoke", {"reason": "Leck"}, ("cap", "promotions.block")),
    ("post", "/campaigns/{unique}/codes", {"count": 2}, ("cap", "promotions.edit")),
    ("post", "/campaigns/{unique}/codes/import", "partner_codes", ("cap", "promotions.edit")),
    ("get", "/campaigns/{approved}/redemptions", None, ("cap", "promotions.view")),
    ("get", "/campaigns/{approved}/alerts", None, ("cap", "promotions.view")),
    ("patch", "/campaigns/{draft}", {"name": "Entwurf, neu"}, ("cap", "promotions.edit")),
    ("get", "/alerts?open=true", None, ("cap", "promotions.view")),
    ("post", "/alerts/{alert}/acknowledge", None, ("cap", "promotions.block")),
    ("post", "/codes/{public_code}/block", {"reason": "Leck"}, ("cap", "promotions.block")),
    (
        "post",
        "/codes/block-pattern",
        {"pattern": "MATRIX*", "reason": "Leck"},
        ("cap", "promotions.block"),
    ),
    ("post", "/remediations", "remediation", ("cap", "remediation.preview")),
    ("get", "/remediations", None, ("cap", "remediation.preview")),
    ("get", "/remediations/{job}", None, ("cap", "remediation.preview")),
    ("post", "/remediations/{job}/execute", None, ("cap", "remediation.run")),
    ("get", "/remediations/{job}/items", None, ("cap", "remediation.preview")),
    ("get", "/remediations/{job}/export.csv", None, ("cap", "remediation.preview")),
    ("post", "/deals", "deal", ("cap", "deals.manage")),
    ("get", "/deals", None, "public"),
    ("get", "/deals/{deal}", None, "public"),
    ("post", "/deals/{deal}/queue", {"quantity": 1, "email": "schlange@example.de"}, "public"),
    ("get", "/deals/{deal}/queue/{ticket}", None, "public"),
    ("post", "/deals/{deal}/waitlist", {"email": "warteliste@example.de"}, "public"),
    ("get", "/deals/{deal}/waitlist/{entry}", None, "public"),
    ("get", "/deals/{deal}/dashboard", None, ("cap", "deals.view")),
    ("post", "/deals/{deal}/cancel", {"reason": "Test"}, ("cap", "deals.manage")),
]


def expected(rule, caller) -> set[int]:
    anonymous = caller == "anonymous"
    if rule == "public":
        return {200, 201, 202}
    if rule == "user":
        return {401} if anonymous else {200}
    if rule == "cart_owner":
        return {200, 201} if caller == "owner" else {404}
    kind, cap = rule
    if kind == "cap":
        if anonymous:
            return {401}
        return {200, 201, 202} if _allowed(cap, caller) else {403}
    if kind == "owner_or":
        if anonymous:
            return {401}
        return {200} if caller == "owner" or _allowed(cap, caller) else {404}
    raise AssertionError(rule)


@pytest.fixture
def world(db, make_user, make_product, make_category, address, api_as):
    from warenhaus.checkout import services as checkout

    owner = make_user()
    users = {"owner": owner, "other_shopper": make_user(), "anonymous": None}
    for role in ROLES:
        users[role] = make_user(roles=[role])
    product = make_product(price="49.97", on_hand=50)
    variant = product.variants.get()
    cart, _ = checkout.create_cart(user=owner)
    checkout.add_line(cart_id=cart.id, user=owner, sku=variant.sku, quantity=1)
    anon_cart, _ = checkout.create_cart()
    order_cart, _ = checkout.create_cart()
    checkout.add_line(cart_id=order_cart.id, sku=variant.sku, quantity=1)
    order_cart.user = owner
    order_cart.save()
    order = checkout.place_order(
        cart_id=order_cart.id,
        user=owner,
        email=owner.email,
        shipping_address=address,
        payment_method="test",
    )
    campaigns = _campaigns(users)

    cart_vouchers.apply_voucher(cart_id=cart.id, user=owner, code="MATRIXAPPLY", channel="api")
    from warenhaus.remediation import services as remediation

    job = remediation.create_job(
        actor=users["support"],
        selector={"order_numbers": [order.number]},
        actions=["hold"],
        reason="matrix",
    )
    from datetime import timedelta

    from warenhaus.core.clock import now
    from warenhaus.deals import services as deals

    deal = deals.create_deal(
        actor=users["pricing"],
        sku=variant.sku,
        deal_price="19.99",
        units=1,
        starts_at=now(),
        ends_at=now() + timedelta(hours=1),
    )
    # its one unit held by the first: the wait list takes people (it is for when nothing is free)
    ticket = deals.join_queue(
        deal_id=deal.pk, guest="session:erster@example.de", email="erster@example.de"
    )["ticket"]
    entry = deals.join_waitlist(
        deal_id=deal.pk, who="session:wartend@example.de", email="wartend@example.de"
    )["entry"]
    return {
        **campaigns,
        "job": job,
        "deal": deal,
        "ticket": ticket,
        "entry": entry,
        "users": users,
        "product": product,
        "variant": variant,
        "cart": cart,
        "anon_cart": anon_cart,
        "order": order,
        "category": make_category(),
        "address": address,
    }


def _campaigns(users) -> dict:
    """A draft, an approved public-code campaign, a paused one and a unique-code one, each made
    by the promotions user and approved by the approver."""
    from datetime import timedelta

    from warenhaus.core.clock import now
    from warenhaus.promotions import services as promotions

    author, approver = users["promotions"], users["promotions_approver"]
    safe = {
        "discount_kind": "fixed",
        "discount_value": "5.00",
        "min_basket": "20.00",
        "budget": "500.00",
        "total_limit": 50,
        "valid_until": now() + timedelta(days=7),
    }

    def make(name, code="", approve=True, stacking="exclusive"):
        c = promotions.create_campaign(
            actor=author,
            name=name,
            code_mode="public" if code else "unique",
            public_code=code,
            stacking=stacking,
            **safe,
        )
        if approve:
            promotions.approve_campaign(campaign_id=c.pk, actor=approver)
        return c

    make("Im Warenkorb", code="MATRIXAPPLY", stacking="stackable")
    paused = make("Pausiert", code="MATRIXPAUSE")
    promotions.pause_campaign(campaign_id=paused.pk, actor=approver, reason="Test")
    from warenhaus.promotions.models import Alert

    at = now()
    alert = Alert.objects.create(
        campaign=paused,
        monitor="rate",
        measured=60,
        threshold=10,
        peak=60,
        window_seconds=60,
        message="60 redemptions in the last 60 s; at most 10 expected.",
        created_at=at,
        last_seen_at=at,
    )
    return {
        "alert": alert,
        "draft": make("Entwurf", approve=False),
        "approved": make("Freigegeben", code="MATRIXPUB", stacking="stackable"),
        "paused": paused,
        "unique": make("Einzelcodes"),
        "public_code": "MATRIXPUB",
    }


def _body(spec, world):
    n = next(_n)
    if spec == "register":
        return {"email": f"neu{n}@example.de", "password": "Sehr-Geheim-42", "name": "Neu"}
    if spec == "token":
        return {"email": world["users"]["owner"].email, "password": "Geheim-Passwort-1"}
    if spec == "login_link":
        return {"email": world["users"]["owner"].email}
    if spec == "login_link_key":
        from warenhaus.accounts.login_links import make_key

        return {"key": make_key(world["users"]["owner"])}
    if spec == "product":
        return {
            "title": f"Matrix-Produkt {n}",
            "category": world["category"].slug,
            "variants": [
                {"sku": f"MX-{n}", "price": {"amount": "9.99", "currency": "EUR"}, "on_hand": 3}
            ],
        }
    if spec == "line":
        return {"sku": world["variant"].sku, "quantity": 1}
    if spec == "voucher":
        return {"code": "MATRIXPUB"}
    if spec == "campaign":
        return {
            "name": f"Matrix {n}",
            "discount_kind": "percent",
            "discount_value": "10",
            "code_mode": "unique",
        }
    if spec == "partner_codes":
        return {"codes": [f"PARTNER{n}A", f"PARTNER{n}B"]}
    if spec == "deal":
        from datetime import timedelta

        from warenhaus.core.clock import now

        return {
            "sku": world["variant"].sku,
            "deal_price": {"amount": "9.99", "currency": "EUR"},
            "units": 1,
            "starts_at": now().isoformat(),
            "ends_at": (now() + timedelta(hours=2)).isoformat(),
        }
    if spec == "remediation":
        return {
            "selector": {"order_numbers": [world["order"].number]},
            "actions": ["hold", "notify"],
            "dry_run": True,
        }
    if spec == "checkout":
        return {
            "email": "matrix@example.de",
            "shipping_address": world["address"],
            "payment_method": "invoice",
        }
    return spec


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(
    "method,template,body,rule", ENDPOINTS, ids=[f"{m.upper()} {t}" for m, t, _, _ in ENDPOINTS]
)
def test_matrix(world, api_as, caller, method, template, body, rule):
    from warenhaus.orders import services as orders

    order = world["order"]
    if body == "held":
        orders.hold(number=order.number, actor=None, reason="matrix")
        body = {"reason": "ok"}
    elif body == "shipped":
        orders.ship(number=order.number, actor=None)
        body = None
    path = template.format(
        slug=world["product"].slug,
        sku=world["variant"].sku,
        cart=world["cart"].id,
        anon_cart=world["anon_cart"].id,
        order=order.number,
        draft=world["draft"].pk,
        approved=world["approved"].pk,
        paused=world["paused"].pk,
        unique=world["unique"].pk,
        alert=world["alert"].pk,
        job=world["job"].pk,
        deal=world["deal"].pk,
        ticket=world["ticket"],
        entry=world["entry"],
        public_code=world["public_code"],
        applied_code="MATRIXAPPLY",
    )
    client = api_as(world["users"][caller])
    kwargs = {}
    if (
        template.endswith("/checkout")
        or template.endswith("/codes")
        or template == "/remediations"
        and method == "post"
    ):
        kwargs["headers"] = {"Idempotency-Key": f"matrix-{next(_n)}"}
    payload = _body(body, world)
    if method in {"get", "delete"}:
        resp = getattr(client, method)(path, **kwargs)
    else:
        resp = getattr(client, method)(path, payload, **kwargs)
    assert resp.status_code in expected(rule, caller), (
        caller,
        method,
        path,
        resp.status_code,
        resp.content[:300],
    )
    if resp.status_code >= 400:
        assert resp["Content-Type"].startswith("application/problem+json")
        assert resp.json()["code"]


def test_every_openapi_operation_is_in_the_matrix(api):
    doc = api.get("/openapi.json").json()
    documented = {(m, p.removeprefix("/api/v1")) for p, ops in doc["paths"].items() for m in ops}
    covered = set()
    for method, template, _, _ in ENDPOINTS:
        normalised = (
            template.replace("{anon_cart}", "{cart_id}")
            .replace("{cart}", "{cart_id}")
            .replace("{order}", "{number}")
        )
        for placeholder in ("{draft}", "{approved}", "{paused}", "{unique}"):
            normalised = normalised.replace(placeholder, "{campaign_id}")
        normalised = (
            normalised.replace("{public_code}", "{code}")
            .replace("{applied_code}", "{code}")
            .replace("{alert}", "{alert_id}")
            .replace("{job}", "{job_id}")
            .replace("{deal}", "{deal_id}")
        )
        normalised = normalised.partition("?")[0]
        covered.add((method, normalised))
    missing = documented - covered
    assert not missing, f"add these endpoints to the authorisation matrix: {sorted(missing)}"


# What each role may do, written out by hand from the README's role table. The matrix above
# derives its expectations from CAPABILITIES, so it cannot notice a role that was given too
# much; this literal copy can. Changing a role's rights means changing both, on purpose.
EXPECTED_CAPABILITIES = {
    "catalog.edit": {"catalog"},
    "stock.edit": {"catalog"},
    "price.edit": {"pricing"},
    "orders.view_all": {"risk", "support"},
    "orders.hold": {"risk", "support"},
    "orders.release": {"risk", "support"},
    "orders.cancel": {"support"},
    "orders.ship": {"support"},
    "orders.place_phone": {"support"},
    "audit.view": {"risk"},
    "promotions.view": {"promotions", "promotions_approver", "risk", "support"},
    "promotions.edit": {"promotions"},
    "promotions.approve": {"promotions_approver"},
    "promotions.block": {"promotions", "promotions_approver", "risk"},
    "remediation.preview": {"promotions", "promotions_approver", "risk", "support"},
    "remediation.run": {"risk", "support"},
    "deals.manage": {"pricing", "promotions"},
    "deals.view": {"pricing", "promotions", "promotions_approver", "risk", "support"},
    "console.access": {
        "catalog",
        "pricing",
        "promotions",
        "promotions_approver",
        "risk",
        "support",
    },
}


def test_role_rights_are_exactly_the_documented_ones():
    assert {k: set(v) for k, v in CAPABILITIES.items()} == EXPECTED_CAPABILITIES
