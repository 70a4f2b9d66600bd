"""Logging in (rate limited, the anonymous cart comes along), registering, and a shopper's orders."""

from __future__ import annotations

import pytest
from django.test import Client

from warenhaus.checkout.models import Cart

pytestmark = pytest.mark.django_db

PASSWORD = "Geheim-Passwort-1"


def test_login_page_renders(client):
    r = client.get("/account/login/")
    assert r.status_code == 200 and "Anmelden" in r.content.decode()


def test_login_merges_the_anonymous_cart(client, shopper, make_product):
    from warenhaus.checkout import services as checkout

    a = make_product(on_hand=9).variants.get()
    b = make_product(on_hand=9).variants.get()
    mine, _ = checkout.create_cart(user=shopper)
    checkout.add_line(cart_id=mine.id, user=shopper, sku=a.sku, quantity=1)
    client.post("/cart/add/", {"sku": a.sku, "quantity": 2})
    client.post("/cart/add/", {"sku": b.sku, "quantity": 1})
    r = client.post(
        "/account/login/", {"email": shopper.email, "password": PASSWORD, "next": "/cart/"}
    )
    assert r.status_code == 302 and r["Location"] == "/cart/"
    assert client.session["cart_id"] == mine.id
    quantities = {
        line.variant.sku: line.quantity for line in Cart.objects.get(pk=mine.id).lines.all()
    }
    assert quantities == {a.sku: 3, b.sku: 1}
    assert "Meine Bestellungen" in client.get("/cart/").content.decode()


def test_login_with_wrong_password_is_4xx_with_message(client, shopper):
    r = client.post("/account/login/", {"email": shopper.email, "password": "falsch-falsch"})
    assert r.status_code == 401
    assert "E-Mail-Adresse oder Passwort ist falsch" in r.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_is_rate_limited_with_a_readable_message(client, shopper, settings):
    settings.LOGIN_RATE_LIMIT = 3
    for _ in range(3):
        assert (
            client.post(
                "/account/login/", {"email": shopper.email, "password": "falsch-falsch"}
            ).status_code
            == 401
        )
    r = client.post("/account/login/", {"email": shopper.email, "password": PASSWORD})
    assert r.status_code == 429 and r["Retry-After"]
    assert "Zu viele Versuche" in r.content.decode()
    assert (
        'id="login-link-offer"' in r.content.decode()
        and "Anmeldelink zusenden" in r.content.decode()
    )
    assert "_auth_user_id" not in client.session


def _mailed_link(email: str) -> str:
    """Deliver the login-link mail waiting for ``email``; the path of the link in it."""
    import re
    from urllib.parse import urlparse

    from django.core import mail

    from warenhaus.notifications.models import OutboxMessage
    from warenhaus.notifications.services import deliver

    msg = OutboxMessage.objects.filter(kind="login_link", to_email=email).latest("pk")
    assert deliver(msg.pk) == "sent"
    return urlparse(re.search(r"\S+/account/login/link/\S+/", mail.outbox[-1].body).group(0)).path


def test_a_refused_owner_logs_in_with_a_mailed_link(client, shopper, settings):
    from warenhaus.accounts import services
    from warenhaus.core.errors import DomainError

    settings.LOGIN_RATE_LIMIT_ACCOUNT = 5
    for n in range(5):  # strangers, elsewhere, use up the account's allowance
        with pytest.raises(DomainError):
            services.login(
                email=shopper.email, password="falsch-falsch", client_ip=f"203.0.113.{n}"
            )
    r = client.post(
        "/account/login/", {"email": shopper.email, "password": PASSWORD, "next": "/cart/"}
    )
    assert r.status_code == 429 and 'id="login-link-offer"' in r.content.decode()
    r = client.post("/account/login/link/", {"email": shopper.email, "next": "/cart/"})
    assert r.status_code == 200 and 'id="login-link-sent"' in r.content.decode()
    path = _mailed_link(shopper.email)
    page = client.get(path)  # opening the link (or a mail scanner opening it) only asks
    assert page.status_code == 200 and f"Als {shopper.email} anmelden?" in page.content.decode()
    assert "_auth_user_id" not in client.session
    r = client.post(path, {"next": "/cart/"})
    assert r.status_code == 302 and r["Location"] == "/cart/"
    assert client.session["_auth_user_id"] == str(shopper.pk) and "wh_device" in r.cookies
    used = client.post(path)
    assert (
        used.status_code == 401 and "abgelaufen oder wurde schon benutzt" in used.content.decode()
    )


def test_a_browser_that_logged_in_before_is_not_locked_out_by_strangers(client, shopper, settings):
    from warenhaus.accounts import services
    from warenhaus.core.errors import DomainError

    assert (
        client.post("/account/login/", {"email": shopper.email, "password": PASSWORD}).status_code
        == 302
    )
    client.post("/account/logout/")
    settings.LOGIN_RATE_LIMIT_ACCOUNT = 5
    for n in range(8):
        with pytest.raises(DomainError):
            services.login(
                email=shopper.email, password="falsch-falsch", client_ip=f"203.0.113.{n}"
            )
    assert (
        Client().post("/account/login/", {"email": shopper.email, "password": PASSWORD}).status_code
        == 429
    )
    assert (
        client.post("/account/login/", {"email": shopper.email, "password": PASSWORD}).status_code
        == 302
    )


def test_the_login_link_page_works_in_english_and_refuses_bad_keys(client, shopper):
    assert "Log in with a link by e-mail" in client.get("/en/account/login/").content.decode()
    r = client.get("/en/account/login/link/1-abc-nope/")
    assert (
        r.status_code == 401
        and "This login link has expired or has been used already." in r.content.decode()
    )
    r = client.post("/en/account/login/link/", {"email": "kein-at"})
    assert r.status_code == 422


def test_asking_too_often_for_a_link_says_to_use_the_newest_mail(client, shopper, settings):
    for _ in range(settings.LOGIN_LINK_LIMIT_EMAIL):
        assert client.post("/account/login/link/", {"email": shopper.email}).status_code == 200
    r = client.post("/account/login/link/", {"email": shopper.email})
    assert r.status_code == 429 and r["Retry-After"] and "die neueste E-Mail" in r.content.decode()


def test_login_ignores_foreign_next(client, shopper):
    r = client.post(
        "/account/login/",
        {"email": shopper.email, "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert r.status_code == 302 and r["Location"] == "/"


def test_register_logs_in_and_refuses_duplicates(client):
    r = client.post(
        "/account/register/", {"name": "Max", "email": "max@example.de", "password": PASSWORD}
    )
    assert r.status_code == 302 and "_auth_user_id" in client.session
    r = Client().post(
        "/account/register/", {"name": "Max", "email": "max@example.de", "password": PASSWORD}
    )
    assert r.status_code == 409 and "existiert bereits" in r.content.decode()
    r = Client().post("/account/register/", {"email": "kurz@example.de", "password": "kurz"})
    assert r.status_code == 422


def test_logout(login_client, shopper):
    c = login_client(shopper)
    assert c.post("/account/logout/").status_code == 302
    assert "_auth_user_id" not in c.session


def test_my_orders_needs_login(client):
    r = client.get("/account/orders/")
    assert r.status_code == 302 and r["Location"].startswith(
        "/account/login/?next=/account/orders/"
    )


def test_my_orders_lists_only_mine_and_detail_is_owner_only(
    login_client, shopper, make_user, place_order, variant
):
    other = make_user()
    mine = place_order(user=shopper, variant=variant)
    theirs = place_order(user=other, variant=variant)
    guest = place_order(user=None, variant=variant)
    c = login_client(shopper)
    html = c.get("/account/orders/").content.decode()
    assert mine.number in html and theirs.number not in html and guest.number not in html
    assert c.get(f"/account/orders/{mine.number}/").status_code == 200
    assert c.get(f"/account/orders/{theirs.number}/").status_code == 404
    assert c.get(f"/order/{theirs.number}/").status_code == 404
    assert c.get(f"/order/{guest.number}/").status_code == 404
    assert c.get("/account/orders/WH-GIBTSNIX/").status_code == 404


def test_checkout_as_shopper_links_the_order(login_client, shopper, make_product):
    from warenhaus.orders.models import Order

    c = login_client(shopper)
    p = make_product()
    c.post("/cart/add/", {"sku": p.variants.get().sku, "quantity": 1})
    page = c.get("/checkout/").content.decode()
    assert shopper.email in page
    r = c.post(
        "/checkout/",
        {
            "email": shopper.email,
            "name": "Erika",
            "street": "Weg 1",
            "postal_code": "10115",
            "city": "Berlin",
            "country": "DE",
            "shipping_method": "standard",
            "payment_method": "invoice",
        },
    )
    assert r.status_code == 302
    order = Order.objects.get()
    assert order.user == shopper
    assert order.number in c.get("/account/orders/").content.decode()
