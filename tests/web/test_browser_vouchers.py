"""A shopper's view of vouchers, in the real browser: an applied voucher in the cart and at
checkout, and a plain reason when a code does not apply (unapproved, mistyped, paused)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def codes(make_user, make_product):
    from warenhaus.core.clock import now
    from warenhaus.promotions import services

    author, approver = make_user(roles=["promotions"]), make_user(roles=["promotions_approver"])
    until = now() + timedelta(days=7)
    genuine = services.create_campaign(
        actor=author,
        name="Herbst",
        discount_kind="fixed",
        discount_value="10.00",
        min_basket="30.00",
        budget="1000.00",
        total_limit=100,
        code_mode="unique",
        valid_until=until,
    )
    services.approve_campaign(campaign_id=genuine.pk, actor=approver)
    _b, generated = services.generate_codes(campaign_id=genuine.pk, actor=author, count=2)
    services.create_campaign(
        actor=author,
        name="Nie freigegeben",
        discount_kind="fixed",
        discount_value="400.00",
        min_basket="401.00",
        code_mode="public",
        public_code="NACHT400",
        valid_until=until,
    )
    product = make_product(title="Wanderrucksack 30 l", price="49.97", on_hand=20)
    return {"genuine": genuine, "codes": generated, "product": product, "approver": approver}


def _to_cart(page, product_title: str, prefix: str = "") -> None:
    page.goto(page.url_for(f"{prefix}/search/?q=Wanderrucksack"))
    page.get_by_role("link", name=product_title).first.click()
    page.locator("form button[type=submit]").filter(
        has_text=re.compile("In den Warenkorb|Add to cart")
    ).first.click()
    page.wait_for_url(re.compile(r"/cart/$"))


def _apply(page, code: str, button: str = "Einlösen") -> None:
    page.fill("#voucher-code", code)
    page.locator("#vouchers").get_by_role("button", name=button).click()


def test_shopper_applies_a_voucher_and_sees_plain_reasons_for_bad_ones(browser_page, codes):
    from warenhaus.orders.models import Order
    from warenhaus.promotions import services

    page = browser_page
    _to_cart(page, "Wanderrucksack 30 l")
    # an unapproved code: refused with a plain sentence, nothing applied
    _apply(page, "NACHT400")
    page.wait_for_selector("text=Dieser Gutschein ist nicht gültig.")
    assert page.locator("#vouchers li[data-voucher]").count() == 0
    # a typo in a generated code (two neighbours swapped) is caught by its check character
    good = codes["codes"][0].replace("-", "")
    typo = (
        good[:3] + good[4] + good[3] + good[5:]
        if good[3] != good[4]
        else good[:3] + ("A" if good[3] != "A" else "B") + good[4:]
    )
    _apply(page, typo)
    page.wait_for_selector("text=Dieser Code enthält einen Tippfehler.")
    # the genuine code applies: the discount shows in the cart and the total follows
    _apply(page, codes["codes"][0].lower())
    page.wait_for_selector("#vouchers li[data-voucher]")
    assert "-10,00 €" in page.inner_text("#vouchers")
    page.wait_for_function(
        "document.querySelector('#grand-total').innerText.includes('44,87')"
    )  # 49,97 - 10 + 4,90 shipping
    # the campaign is paused meanwhile: the cart says the voucher does not apply and why
    services.pause_campaign(
        campaign_id=codes["genuine"].pk, actor=codes["approver"], reason="Prüfung"
    )
    page.reload()
    assert "gilt nicht" in page.inner_text("#vouchers")
    assert "Dieser Gutschein kann im Moment nicht eingelöst werden." in page.content()
    services.resume_campaign(campaign_id=codes["genuine"].pk, actor=codes["approver"])
    page.reload()
    assert "-10,00 €" in page.inner_text("#vouchers")
    # and it is in the order
    page.get_by_role("link", name="Zur Kasse").click()
    page.wait_for_url(re.compile(r"/checkout/$"))
    assert "-10,00 €" in page.content()
    page.fill("input[name=email]", "wandern@example.de")
    page.fill("input[name=name]", "Erika Mustermann")
    page.fill("input[name=street]", "Heidestraße 17")
    page.fill("input[name=postal_code]", "51147")
    page.fill("input[name=city]", "Köln")
    page.check("input[name=payment_method][value=invoice]")
    page.get_by_role("button", name="Zahlungspflichtig bestellen").click()
    page.wait_for_url(re.compile(r"/order/WH-[A-Z0-9]+/$"))
    order = Order.objects.get(number=page.inner_text("#order-number"))
    assert str(order.discount) == "10.00" and str(order.total) == "44.87"


def test_in_english_a_voucher_below_its_minimum_basket_says_so(browser_page, codes, make_product):
    page = browser_page
    make_product(title="Wanderrucksack Mini", price="19.99", on_hand=5)
    _to_cart(page, "Wanderrucksack Mini", prefix="/en")
    _apply(page, codes["codes"][1], button="Apply")
    page.wait_for_selector("text=This voucher applies from an order value of")
    assert "30.00" in page.content() or "30,00" in page.content()


def test_without_javascript_a_voucher_applies(nojs_page, codes):
    page = nojs_page
    _to_cart(page, "Wanderrucksack 30 l")
    _apply(page, codes["codes"][1])
    page.wait_for_url(re.compile(r"/cart/$"))
    assert "-10,00 €" in page.inner_text("#vouchers")
