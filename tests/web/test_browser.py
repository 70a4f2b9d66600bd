"""Each page family driven through a real browser (Debian's Chromium via Playwright) against a
live server: what a shopper or an operator actually clicks."""

from __future__ import annotations

import re

import pytest

from .conftest import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "Geheim-Passwort-1"


def test_guest_buys_from_home_to_confirmation(browser_page, make_category, make_product):
    from warenhaus.orders.models import Order

    page = browser_page
    cat = make_category(slug="kueche", name="Küche")
    make_product(title="Wasserkocher Classic", price="29.99", on_hand=5, category=cat)
    page.goto(page.url_for("/"))
    page.get_by_role("link", name="Küche").click()
    page.get_by_role("link", name="Wasserkocher Classic").click()
    assert page.locator(".price-big").first.inner_text() == "29,99 €"
    assert "inkl. 19 % MwSt." in page.content()
    page.fill("input[name=quantity]", "1")
    page.get_by_role("button", name="In den Warenkorb").click()
    page.wait_for_url(re.compile(r"/cart/$"))
    assert "Wasserkocher Classic" in page.inner_text("#cart")
    # htmx: changing the quantity updates the cart in place
    page.fill("#cart input[name=quantity]", "2")
    page.dispatch_event("#cart input[name=quantity]", "change")
    page.wait_for_function(
        "document.querySelector('#grand-total').innerText.includes('59,98')"
    )  # free shipping from 50 €
    assert page.locator("#cart-problems").count() == 0
    assert page.inner_text("#cart-count") == "2"  # the header badge follows along
    page.get_by_role("link", name="Zur Kasse").click()
    page.wait_for_url(re.compile(r"/checkout/$"))
    page.fill("input[name=email]", "gast@example.de")
    page.fill("input[name=name]", "Erika Mustermann")
    page.fill("input[name=street]", "Heidestraße 17")
    page.fill("input[name=postal_code]", "51147")
    page.fill("input[name=city]", "Köln")
    page.check("input[name=payment_method][value=test]")
    page.select_option("select[name=test_outcome]", "approve")
    page.get_by_role("button", name="Zahlungspflichtig bestellen").click()
    page.wait_for_url(re.compile(r"/order/WH-[A-Z0-9]+/$"))
    number = page.inner_text("#order-number")
    order = Order.objects.get(number=number)
    assert (
        order.status == "paid" and str(order.total) == "59.98" and order.email == "gast@example.de"
    )
    assert "Vielen Dank für Ihre Bestellung" in page.content()


def test_guest_checkout_with_declined_card_stays_on_checkout(browser_page, make_product):
    from warenhaus.orders.models import Order

    page = browser_page
    p = make_product(title="Toaster", price="19.99", on_hand=5)
    page.goto(page.url_for(f"/product/{p.slug}/"))
    page.get_by_role("button", name="In den Warenkorb").click()
    page.goto(page.url_for("/checkout/"))
    for name, value in {
        "email": "gast@example.de",
        "name": "Erika",
        "street": "Weg 1",
        "postal_code": "10115",
        "city": "Berlin",
    }.items():
        page.fill(f"input[name={name}]", value)
    page.check("input[name=payment_method][value=test]")
    page.select_option("select[name=test_outcome]", "decline")
    page.get_by_role("button", name="Zahlungspflichtig bestellen").click()
    assert "abgelehnt" in page.inner_text("#error")
    assert not Order.objects.exists()


def test_registered_shopper_logs_in_cart_is_merged_and_sees_orders(
    browser_page, make_user, make_product, place_order
):
    page = browser_page
    shopper = make_user(email="erika@example.de")
    old_item = make_product(title="Teekanne", on_hand=5).variants.get()
    earlier = place_order(user=shopper, variant=old_item)
    p = make_product(title="Kaffeebecher", price="9.90", on_hand=10)
    page.goto(page.url_for(f"/product/{p.slug}/"))
    page.fill("input[name=quantity]", "3")
    page.get_by_role("button", name="In den Warenkorb").click()
    page.wait_for_url(re.compile(r"/cart/$"))
    page.get_by_role("link", name="Anmelden").click()
    page.fill("input[name=email]", "erika@example.de")
    page.fill("input[name=password]", "falsch-falsch")
    page.locator("main").get_by_role("button", name="Anmelden").click()
    assert "E-Mail-Adresse oder Passwort ist falsch" in page.inner_text("#error")
    page.fill("input[name=password]", PASSWORD)
    page.locator("main").get_by_role("button", name="Anmelden").click()
    page.wait_for_selector("text=Willkommen zurück!")
    page.get_by_role("link", name="Warenkorb").click()
    row = page.locator("#cart tr", has_text="Kaffeebecher")
    assert row.locator("input[name=quantity]").input_value() == "3"
    page.get_by_role("link", name="Meine Bestellungen").click()
    page.get_by_role("link", name=earlier.number).click()
    page.wait_for_url(re.compile(rf"/account/orders/{earlier.number}/$"))
    # the locator waits for the new document (page.content() right after the click can catch
    # the navigation before anything is parsed and read "")
    assert "Teekanne" in page.locator("main").inner_text()
    page.get_by_role("button", name="Abmelden").click()
    page.wait_for_selector("text=Sie sind abgemeldet.")


def test_switch_between_german_and_english(browser_page, make_product):
    page = browser_page
    p = make_product(title="Bügeleisen", price="1299.00")
    page.goto(page.url_for(f"/product/{p.slug}/"))
    assert page.get_by_role("button", name="In den Warenkorb").is_visible()
    assert "1.299,00 €" in page.inner_text(".price-big")
    page.locator(".lang-switch button[value=en]").click()
    page.wait_for_url(re.compile(rf"/en/product/{p.slug}/$"))
    assert page.get_by_role("button", name="Add to cart").is_visible()
    assert "€1,299.00" in page.inner_text(".price-big")
    assert page.locator("html").get_attribute("lang") == "en"
    page.locator(".lang-switch button[value=de]").click()
    page.wait_for_url(re.compile(rf"/product/{p.slug}/$"))
    assert (
        "/en/" not in page.url and page.get_by_role("button", name="In den Warenkorb").is_visible()
    )


def test_support_finds_an_order_holds_it_and_sees_the_history(
    browser_page, make_user, make_product, place_order
):
    from warenhaus.orders.models import Order

    page = browser_page
    make_user(email="support@warenhaus.example", roles=["support"])
    v = make_product(title="Laptop", price="999.00", on_hand=10).variants.get()
    place_order(variant=v, email="jemand@example.de")
    target = place_order(variant=v, email="verdacht@example.de")
    browser_login(page, "support@warenhaus.example", next_path="/console/")
    page.wait_for_url(re.compile(r"/console/$"))
    page.locator(".console-bar").get_by_role("link", name="Bestellungen").click()
    page.fill("main input[name=q]", "verdacht@")
    page.get_by_role("button", name="Filtern").click()
    page.wait_for_url(re.compile(r"q=verdacht"))
    rows = page.locator(".orders-table tbody tr")
    assert rows.count() == 1
    rows.get_by_role("link", name=target.number).click()
    page.fill("#action-hold textarea[name=reason]", "Adresse passt nicht zur Zahlung")
    page.locator("#action-hold button").click()
    page.wait_for_selector(f"text=Bestellung {target.number} ist angehalten.")
    assert page.inner_text("#order-status") == "angehalten"
    assert "Adresse passt nicht zur Zahlung" in page.inner_text("#history")
    assert (
        page.locator("#action-release").is_visible() and page.locator("#action-hold").count() == 0
    )
    assert Order.objects.get(pk=target.pk).status == "on_hold"
    # a reason is required: the browser blocks the empty form, the server refuses it too
    page.locator("#action-release textarea").evaluate("el => el.removeAttribute('required')")
    page.locator("#action-release button").click()
    assert "Bitte geben Sie einen Grund an" in page.inner_text("#error")
    assert Order.objects.get(pk=target.pk).status == "on_hold"


def test_catalog_changes_stock_and_pricing_changes_a_price(
    browser_page, new_browser_page, make_user, make_product
):
    from warenhaus.catalog.models import Variant

    make_user(email="katalog@warenhaus.example", roles=["catalog"])
    make_user(email="preise@warenhaus.example", roles=["pricing"])
    p = make_product(title="Akkuschrauber", price="79.00", on_hand=4)
    sku = p.variants.get().sku

    page = browser_page
    browser_login(page, "katalog@warenhaus.example", next_path="/console/products/")
    page.wait_for_url(re.compile(r"/console/products/$"))
    page.fill("main input[name=q]", "Akku")
    page.locator("main").get_by_role("button", name="Suchen").click()
    page.wait_for_url(re.compile(r"q=Akku"))
    page.get_by_role("link", name="Akkuschrauber").click()
    assert page.locator(".price-form").count() == 0
    page.fill(".stock-form input[name=on_hand]", "25")
    page.fill(".stock-form input[name=reason]", "Wareneingang")
    page.get_by_role("button", name="Bestand ändern").click()
    page.wait_for_selector(f"text=Der Bestand von {sku} wurde geändert.")
    assert Variant.objects.get(sku=sku).stock.on_hand == 25

    other = new_browser_page()
    browser_login(other, "preise@warenhaus.example", next_path=f"/console/products/{p.slug}/")
    other.wait_for_url(re.compile(rf"/console/products/{p.slug}/$"))
    assert other.locator(".stock-form").count() == 0
    other.fill(".price-form input[name=amount]", "74,95")
    other.fill(".price-form input[name=reason]", "Aktion")
    other.get_by_role("button", name="Preis ändern").click()
    other.wait_for_selector(f"text=Der Preis von {sku} wurde geändert.")
    assert "74,95 €" in other.inner_text(f"#variant-{sku}")
    assert str(Variant.objects.get(sku=sku).price) == "74.95"


def test_risk_reads_the_audit_trail(browser_page, make_user, make_product):
    from warenhaus.catalog.services import set_price

    pricer = make_user(email="preise@warenhaus.example", roles=["pricing"])
    make_user(email="risiko@warenhaus.example", roles=["risk"])
    p = make_product(title="Fernseher", price="499.00")
    sku = p.variants.get().sku
    set_price(actor=pricer, sku=sku, amount="449.00", reason="Wochenangebot", source="console")
    page = browser_page
    browser_login(page, "risiko@warenhaus.example", next_path="/console/")
    page.locator(".console-bar").get_by_role("link", name="Prüfprotokoll").click()
    page.fill("input[name=actor]", "preise@")
    page.get_by_role("button", name="Filtern").click()
    page.wait_for_url(re.compile(r"actor=preise"))
    table = page.locator(".audit-table")
    assert (
        "price.set" in table.inner_text()
        and "Wochenangebot" in table.inner_text()
        and sku in table.inner_text()
    )
    assert page.locator(".audit-table form").count() == 0  # read-only: no edit or delete anywhere
    page.fill("input[name=actor]", "niemand@")
    page.get_by_role("button", name="Filtern").click()
    page.wait_for_url(re.compile(r"actor=niemand"))
    assert "Keine Einträge" in page.content()


def test_shopper_is_refused_the_console(browser_page, make_user):
    page = browser_page
    make_user(email="kunde@example.de")
    browser_login(page, "kunde@example.de")
    page.wait_for_selector("text=Willkommen zurück!")
    response = page.goto(page.url_for("/console/"))
    assert response.status == 403 and "Zugriff verweigert" in page.content()


def test_the_purchase_works_without_javascript(nojs_page, make_product):
    from warenhaus.orders.models import Order

    page = nojs_page
    p = make_product(title="Gießkanne", price="12.50", on_hand=9)
    page.goto(page.url_for(f"/product/{p.slug}/"))
    page.get_by_role("button", name="In den Warenkorb").click()
    page.wait_for_url(re.compile(r"/cart/$"))
    page.fill("#cart input[name=quantity]", "4")
    page.get_by_role("button", name="Aktualisieren").click()
    page.wait_for_load_state()
    assert "50,00 €" in page.inner_text("#grand-total")  # free standard shipping from 50 €
    page.check("input[name=shipping_method][value=express]")
    page.get_by_role("button", name="Versandart ändern").click()
    page.wait_for_load_state()
    assert "62,90 €" in page.inner_text("#grand-total")
    page.get_by_role("link", name="Zur Kasse").click()
    for name, value in {
        "email": "ohne-js@example.de",
        "name": "Erika",
        "street": "Weg 1",
        "postal_code": "10115",
        "city": "Berlin",
    }.items():
        page.fill(f"input[name={name}]", value)
    page.get_by_role("button", name="Zahlungspflichtig bestellen").click()
    page.wait_for_url(re.compile(r"/order/WH-[A-Z0-9]+/$"))
    assert Order.objects.get(number=page.inner_text("#order-number")).shipping_method == "express"
