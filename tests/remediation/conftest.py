"""Fixtures for remediation: campaigns (from the promotions tests), the worker loop and a
movable clock (from the outbox tests), and orders placed through the real checkout."""

from __future__ import annotations

import pytest

from tests.notifications.conftest import clock, run_worker  # noqa: F401  (fixtures and helper)
from tests.promotions.conftest import approver, author, make_campaign, unique_code  # noqa: F401  (fixtures)
from warenhaus.checkout import vouchers as cart_vouchers


@pytest.fixture
def support(make_user):
    return make_user(roles=["support"])


@pytest.fixture
def risk(make_user):
    """A second person: prepares jobs that support executes (four eyes on goodwill vouchers)."""
    return make_user(roles=["risk"])


@pytest.fixture
def buy(db, make_product, address):
    """``buy(code=None, email=..., user=None, price="120.00", quantity=1, product=None,
    channel="web")`` -> an order placed through the checkout services, with the code applied."""
    from warenhaus.checkout import services as checkout

    def make(
        *,
        code=None,
        email="erika@example.de",
        user=None,
        price="120.00",
        quantity=1,
        product=None,
        name="Erika Mustermann",
    ):
        product = product or make_product(price=price, on_hand=1000)
        cart, _ = checkout.create_cart(user=user)
        checkout.add_line(
            cart_id=cart.id, user=user, sku=product.variants.get().sku, quantity=quantity
        )
        if code:
            cart_vouchers.apply_voucher(cart_id=cart.id, user=user, code=code)
        return checkout.place_order(
            cart_id=cart.id,
            user=user,
            email=email,
            shipping_address={**address, "name": name},
            payment_method="invoice",
        )

    return make
