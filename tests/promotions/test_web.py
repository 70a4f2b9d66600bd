"""The voucher form on the cart page: apply, remove, and the reason in plain words."""

from __future__ import annotations

from warenhaus.promotions import services


def _cart(client, make_product, price="49.97"):
    p = make_product(price=price)
    client.post("/cart/add/", {"sku": p.variants.get().sku, "quantity": 1, "product": p.slug})
    return p


def test_apply_and_remove_a_voucher(client, make_product, make_campaign):
    make_campaign(public_code="SOMMER10")
    _cart(client, make_product)
    r = client.post("/cart/voucher/", {"code": "sommer10"})
    assert r.status_code == 302
    page = client.get("/cart/").content.decode()
    assert "…R10" in page and "-10,00" in page and 'id="voucher-code"' in page
    from warenhaus.promotions.models import CartVoucher

    cv = CartVoucher.objects.get()
    assert client.post("/cart/voucher/remove/", {"voucher": cv.pk}).status_code == 302
    assert not CartVoucher.objects.exists()


def test_refusals_read_as_sentences_in_german_and_english(client, make_product, make_campaign):
    make_campaign(public_code="ENTWURF", approve=False)
    _cart(client, make_product)
    r = client.post("/cart/voucher/", {"code": "ENTWURF"})
    assert r.status_code == 409
    assert "Dieser Gutschein ist nicht gültig." in r.content.decode()
    r = client.post("/en/cart/voucher/", {"code": "GIBTESNICHT"})
    assert r.status_code == 422
    assert "We do not know this voucher code." in r.content.decode()


def test_a_voucher_that_stops_applying_is_explained_on_the_cart(
    client, make_product, make_campaign, approver
):
    c = make_campaign(public_code="BALDWEG")
    _cart(client, make_product)
    client.post("/cart/voucher/", {"code": "BALDWEG"})
    services.pause_campaign(campaign_id=c.pk, actor=approver, reason="Leck")
    page = client.get("/cart/").content.decode()
    assert "Dieser Gutschein kann im Moment nicht eingelöst werden." in page


def test_minimum_basket_names_the_amount(client, make_product, make_campaign):
    make_campaign(public_code="AB100", min_basket="100.00")
    _cart(client, make_product)
    r = client.post("/en/cart/voucher/", {"code": "AB100"})
    assert "from an order value of €100.00." in r.content.decode()
