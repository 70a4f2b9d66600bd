"""The cart owns its vouchers and asks promotions what they are worth, through the discounts
port of checkout (:mod:`warenhaus.checkout.discounts`); accounts tell checkout about a sign-in
through an event. Checkout works without promotions: no code applies."""

from __future__ import annotations

import pytest

from warenhaus.accounts import services as accounts
from warenhaus.checkout import discounts
from warenhaus.checkout import services as checkout
from warenhaus.checkout import vouchers as cart_vouchers
from warenhaus.core.errors import DomainError
from warenhaus.promotions.models import CartVoucher
from warenhaus.promotions.services import CartCodes

pytestmark = pytest.mark.django_db


def _cart(product, user=None):
    cart, _ = checkout.create_cart(user=user)
    checkout.add_line(cart_id=cart.id, user=user, sku=product.variants.get().sku, quantity=2)
    return cart.id


def test_promotions_answer_the_carts_discounts_port():
    assert isinstance(discounts.discounts(), CartCodes)


def test_a_code_applied_through_the_cart_is_evaluated_by_promotions(make_product, make_campaign):
    make_campaign(public_code="PORT10")
    cart_id = _cart(make_product(price="49.97"))
    view = cart_vouchers.apply_voucher(cart_id=cart_id, code="PORT10")
    assert view.totals.discount > 0 and view.vouchers.rows()[0]["applies"] is True
    assert CartVoucher.objects.filter(cart_id=cart_id).count() == 1
    cart_vouchers.remove_voucher(cart_id=cart_id, code="port10")
    assert not CartVoucher.objects.filter(cart_id=cart_id).exists()


def test_without_a_discount_app_no_code_applies_and_carts_are_priced_as_they_are(
    make_product, make_campaign
):
    make_campaign(public_code="KEINER10")
    cart_id = _cart(make_product(price="49.97"))
    previous = discounts.register(discounts.NoDiscounts())
    try:
        with pytest.raises(DomainError) as refused:
            cart_vouchers.apply_voucher(cart_id=cart_id, code="KEINER10")
        assert (refused.value.code, refused.value.status) == ("voucher_unknown", 422)
        with pytest.raises(DomainError) as absent:
            cart_vouchers.remove_voucher(cart_id=cart_id, code="KEINER10")
        assert absent.value.code == "voucher_not_in_cart"
        view = checkout.view_cart(checkout.get_cart(cart_id=cart_id))
        assert view.totals.discount == 0 and view.vouchers.rows() == []
    finally:
        discounts.register(previous)


def test_signing_in_with_a_guest_cart_moves_its_lines_and_vouchers_to_the_shoppers_cart(
    make_product, make_campaign, make_user
):
    make_campaign(public_code="MITKOMMEN")
    product = make_product(price="49.97")
    shopper = make_user()
    mine = _cart(product, user=shopper)
    guest = _cart(product)
    cart_vouchers.apply_voucher(cart_id=guest, code="MITKOMMEN")
    assert accounts.bring_guest_cart(user=shopper, cart_id=guest) == mine
    assert CartVoucher.objects.filter(cart_id=mine).count() == 1
    assert (
        checkout.view_cart(checkout.get_cart(cart_id=mine, user=shopper)).lines[0]["quantity"] == 4
    )
