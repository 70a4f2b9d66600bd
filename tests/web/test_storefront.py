"""The storefront pages through Django's test client: browsing, cart, checkout, confirmation."""

from __future__ import annotations

import pytest

from warenhaus.checkout.models import Cart, CartLine
from warenhaus.orders.models import Order

pytestmark = pytest.mark.django_db


def test_home_lists_categories_and_products(client, make_product, make_category):
    cat = make_category(name="Elektronik")
    make_product(title="Laptop Pro 14", category=cat, price="1299.00")
    r = client.get("/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "Elektronik" in html and "Laptop Pro 14" in html
    assert "1.299,00 €" in html and "inkl. MwSt." in html


def test_english_home_formats_money_in_english(client, make_product):
    make_product(title="Laptop Pro 14", price="1299.00")
    r = client.get("/en/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "€1,299.00" in html and "incl. VAT" in html and 'lang="en"' in html


def test_category_page_shows_products_of_that_category_and_its_children(
    client, make_category, make_product
):
    make_category(slug="haushalt", name="Haushalt")
    child = make_category(slug="kueche", name="Küche", parent="haushalt")
    other = make_category(slug="garten", name="Garten")
    make_product(title="Wasserkocher", category=child)
    make_product(title="Rasenmäher", category=other)
    r = client.get("/category/haushalt/")
    assert r.status_code == 200
    assert "Wasserkocher" in r.content.decode() and "Rasenmäher" not in r.content.decode()
    assert client.get("/category/gibt-es-nicht/").status_code == 404


def test_search(client, make_product):
    make_product(title="Espressomaschine Barista")
    make_product(title="Staubsauger")
    r = client.get("/search/", {"q": "espresso"})
    assert r.status_code == 200
    assert (
        "Espressomaschine Barista" in r.content.decode() and "Staubsauger" not in r.content.decode()
    )
    assert client.get("/search/").status_code == 200


def test_product_page_shows_gross_price_availability_and_form(client, make_product):
    p = make_product(title="Kaffeemühle", price="49.97", on_hand=3, vat_rate="7")
    r = client.get(f"/product/{p.slug}/")
    html = r.content.decode()
    assert r.status_code == 200
    assert "49,97 €" in html and "inkl. 7 % MwSt." in html and "Nur noch 3 verfügbar" in html
    assert "In den Warenkorb" in html and "csrfmiddlewaretoken" in html
    assert client.get("/product/nope/").status_code == 404


def test_sold_out_product_has_no_add_button(client, make_product):
    p = make_product(on_hand=0)
    html = client.get(f"/product/{p.slug}/").content.decode()
    assert "Ausverkauft" in html and "In den Warenkorb" not in html


def test_add_to_cart_and_view_totals_with_vat(client, make_product):
    p = make_product(title="Buch", price="20.00", vat_rate="7")
    sku = p.variants.get().sku
    r = client.post("/cart/add/", {"sku": sku, "quantity": 2, "product": p.slug})
    assert r.status_code == 302 and r["Location"] == "/cart/"
    r = client.get("/cart/")
    html = r.content.decode()
    assert "Buch" in html and "40,00 €" in html
    assert "44,90 €" in html  # 40.00 + 4.90 standard shipping
    assert "inkl. 7 % MwSt." in html and "2,94 €" in html  # 44.90 * 7/107
    assert Cart.objects.get(pk=client.session["cart_id"]).lines.get().quantity == 2


def test_add_to_cart_with_bad_quantity_is_refused_readably(client, make_product):
    p = make_product()
    sku = p.variants.get().sku
    r = client.post("/cart/add/", {"sku": sku, "quantity": "viele", "product": p.slug})
    assert r.status_code == 422
    assert "Menge" in r.content.decode()
    assert not CartLine.objects.exists()


def test_add_more_than_in_stock_is_a_409_with_a_message(client, make_product):
    p = make_product(on_hand=2)
    r = client.post("/cart/add/", {"sku": p.variants.get().sku, "quantity": 5, "product": p.slug})
    assert r.status_code == 409
    assert "nur 2" in r.content.decode()
    assert not CartLine.objects.exists()


def test_unknown_sku_is_404_page_not_500(client):
    r = client.post("/cart/add/", {"sku": "GIBTSNICHT", "quantity": 1})
    assert r.status_code == 404


def test_change_quantity_remove_and_shipping(client, make_product):
    p = make_product(price="10.00", on_hand=10)
    sku = p.variants.get().sku
    client.post("/cart/add/", {"sku": sku, "quantity": 1})
    assert client.post("/cart/update/", {"sku": sku, "quantity": 3}).status_code == 302
    assert CartLine.objects.get().quantity == 3
    r = client.post("/cart/update/", {"sku": sku, "quantity": 0})
    assert r.status_code == 422 and CartLine.objects.get().quantity == 3
    r = client.post("/cart/update/", {"sku": sku, "quantity": 50})
    assert r.status_code == 409 and CartLine.objects.get().quantity == 3
    assert client.post("/cart/shipping/", {"shipping_method": "express"}).status_code == 302
    assert "42,90 €" in client.get("/cart/").content.decode()  # 30.00 + 12.90
    r = client.post("/cart/shipping/", {"shipping_method": "brieftaube"})
    assert r.status_code == 422 and Cart.objects.get().shipping_method == "express"
    assert client.post("/cart/remove/", {"sku": sku}).status_code == 302
    assert not CartLine.objects.exists()


def test_htmx_quantity_change_returns_the_cart(client, make_product):
    p = make_product(price="10.00")
    sku = p.variants.get().sku
    client.post("/cart/add/", {"sku": sku, "quantity": 1})
    r = client.post(
        "/cart/update/", {"sku": sku, "quantity": 2}, follow=True, headers={"HX-Request": "true"}
    )
    assert (
        r.status_code == 200
        and 'id="cart"' in r.content.decode()
        and "20,00 €" in r.content.decode()
    )


def test_cart_problems_are_shown(client, make_product):
    from warenhaus.catalog.services import set_price, set_stock

    p = make_product(title="Toaster", price="30.00", on_hand=5)
    sku = p.variants.get().sku
    client.post("/cart/add/", {"sku": sku, "quantity": 3})
    set_price(actor=None, sku=sku, amount="35.00")
    set_stock(actor=None, sku=sku, on_hand=1)
    html = client.get("/cart/").content.decode()
    assert "Bitte prüfen Sie Ihren Warenkorb" in html
    assert "Nur 1 von Toaster verfügbar" in html
    assert "von 30,00 € auf 35,00 €" in html


def checkout_form(**over):
    data = {
        "email": "gast@example.de",
        "name": "Erika Mustermann",
        "street": "Heidestraße 17",
        "postal_code": "51147",
        "city": "Köln",
        "country": "DE",
        "shipping_method": "standard",
        "payment_method": "invoice",
        "test_outcome": "approve",
    }
    data.update(over)
    return data


def test_guest_checkout_and_confirmation(client, make_product):
    p = make_product(price="49.97", on_hand=5)
    client.post("/cart/add/", {"sku": p.variants.get().sku, "quantity": 1})
    assert client.get("/checkout/").status_code == 200
    r = client.post("/checkout/", checkout_form())
    order = Order.objects.get()
    assert r.status_code == 302 and r["Location"] == f"/order/{order.number}/"
    r = client.get(r["Location"])
    assert (
        r.status_code == 200
        and order.number in r.content.decode()
        and "Vielen Dank" in r.content.decode()
    )
    assert "cart_id" not in client.session
    # nobody else sees it
    from django.test import Client

    assert Client().get(f"/order/{order.number}/").status_code == 404


def test_checkout_with_empty_cart_redirects_to_cart(client):
    r = client.get("/checkout/")
    assert r.status_code == 302 and r["Location"] == "/cart/"


def test_checkout_bad_address_is_422_and_places_nothing(client, make_product):
    p = make_product()
    client.post("/cart/add/", {"sku": p.variants.get().sku, "quantity": 1})
    r = client.post("/checkout/", checkout_form(street="", email="kein-email"))
    assert r.status_code == 422
    assert "korrigieren" in r.content.decode()
    r = client.post("/checkout/", checkout_form(postal_code="123"))
    assert r.status_code == 422 and "Postleitzahl" in r.content.decode()
    r = client.post("/checkout/", checkout_form(country="FR"))
    assert r.status_code == 422
    assert not Order.objects.exists()


def test_declined_test_card_is_402_with_message_and_nothing_placed(client, make_product):
    p = make_product(on_hand=5)
    client.post("/cart/add/", {"sku": p.variants.get().sku, "quantity": 1})
    r = client.post("/checkout/", checkout_form(payment_method="test", test_outcome="decline"))
    assert r.status_code == 402 and "abgelehnt" in r.content.decode()
    r = client.post("/checkout/", checkout_form(payment_method="test", test_outcome="timeout"))
    assert r.status_code == 402 and "nicht rechtzeitig" in r.content.decode()
    assert not Order.objects.exists()
    assert p.variants.get().stock.allocated == 0
    r = client.post("/checkout/", checkout_form(payment_method="test", test_outcome="approve"))
    assert r.status_code == 302
    assert Order.objects.get().status == "paid"


def test_price_change_at_checkout_is_409_then_resubmit_works(client, make_product):
    from warenhaus.catalog.services import set_price

    p = make_product(price="30.00", on_hand=5)
    sku = p.variants.get().sku
    client.post("/cart/add/", {"sku": sku, "quantity": 1})
    set_price(actor=None, sku=sku, amount="32.00")
    r = client.post("/checkout/", checkout_form())
    assert r.status_code == 409 and "Preise" in r.content.decode()
    assert not Order.objects.exists()
    assert client.post("/checkout/", checkout_form()).status_code == 302
    assert str(Order.objects.get().total) == "36.90"


def test_double_submit_of_the_checkout_form_shows_the_same_order(client, make_product):
    p = make_product(on_hand=5)
    client.post("/cart/add/", {"sku": p.variants.get().sku, "quantity": 1})
    cart_id = client.session["cart_id"]
    first = client.post("/checkout/", checkout_form(cart_id=cart_id))
    second = client.post("/checkout/", checkout_form(cart_id=cart_id))
    assert Order.objects.count() == 1
    assert second.status_code == 302 and second["Location"] == first["Location"]


def test_forms_need_csrf(make_product):
    from django.test import Client

    c = Client(enforce_csrf_checks=True)
    p = make_product()
    assert c.post("/cart/add/", {"sku": p.variants.get().sku, "quantity": 1}).status_code == 403
    assert not CartLine.objects.exists()


def test_get_on_post_only_endpoints_is_405(client):
    assert client.get("/cart/add/").status_code == 405
    assert client.get("/account/logout/").status_code == 405


def test_a_database_at_capacity_shows_the_waiting_page_not_a_500(client, monkeypatch):
    """As the API answers ``overloaded``: a page whose database had no room for it this moment
    gets the waiting-room page (429, ``Retry-After``, reloading itself), in the visitor's
    language; a real bug stays a 500."""
    from django.db import OperationalError

    from warenhaus.catalog import selectors

    def full(*a, **k):
        raise OperationalError("connection failed: FATAL:  sorry, too many clients already")

    monkeypatch.setattr(selectors, "categories_tree", full)
    for path, text in (("/", "Einen Moment, bitte"), ("/en/", "Just a moment, please")):
        page = client.get(path)
        assert (
            page.status_code == 429
            and int(page["Retry-After"]) >= 1
            and text in page.content.decode()
        )

    def broken(*a, **k):
        raise OperationalError("no such column: catalog_category.nonsense")

    monkeypatch.setattr(selectors, "categories_tree", broken)
    client.raise_request_exception = False
    assert client.get("/").status_code == 500
