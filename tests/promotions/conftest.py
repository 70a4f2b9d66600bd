"""Factories for campaigns: made by one staff member, approved by another, through the services."""

from __future__ import annotations

from datetime import timedelta

import pytest


@pytest.fixture
def author(make_user):
    return make_user(roles=["promotions"])


@pytest.fixture
def approver(make_user):
    return make_user(roles=["promotions_approver"])


SAFE = {
    "discount_kind": "fixed",
    "discount_value": "10.00",
    "min_basket": "30.00",
    "budget": "1000.00",
    "total_limit": 100,
}


@pytest.fixture
def make_campaign(db, author, approver):
    """``make_campaign(approve=True, public_code="SOMMER10", **fields)`` -> Campaign."""
    from warenhaus.core.clock import now
    from warenhaus.promotions import services

    def make(*, approve=True, public_code="", code_mode=None, override="", **fields):
        body = {**SAFE, "name": "Sommeraktion", "valid_until": now() + timedelta(days=30), **fields}
        mode = code_mode or ("public" if public_code else "unique")
        c = services.create_campaign(actor=author, code_mode=mode, public_code=public_code, **body)
        if approve:
            c = services.approve_campaign(
                campaign_id=c.pk, actor=approver, override_reason=override
            )
        return c

    return make


@pytest.fixture
def unique_code(make_campaign, author):
    """``unique_code(**campaign fields)`` -> (campaign, plain code) of a fresh single-use code."""
    from warenhaus.promotions import services

    def make(**fields):
        c = make_campaign(**fields)
        _batch, codes = services.generate_codes(campaign_id=c.pk, actor=author, count=1)
        return c, codes[0]

    return make


@pytest.fixture
def cart_with(db, make_product):
    """``cart_with(price="49.97", quantity=1, user=None)`` -> cart id with one line."""
    from warenhaus.checkout import services as checkout

    def make(*, price="49.97", quantity=1, user=None, product=None, on_hand=100):
        product = product or make_product(price=price, on_hand=on_hand)
        cart, _ = checkout.create_cart(user=user)
        checkout.add_line(
            cart_id=cart.id, user=user, sku=product.variants.get().sku, quantity=quantity
        )
        return cart.id

    return make
