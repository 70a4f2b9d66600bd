"""Fixtures for the pages: orders placed through the checkout service, logged-in clients, and a
shared headless Chromium for the browser tests."""

from __future__ import annotations

import os

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def place_order(db, address):
    """``place_order(user=None, product=None, quantity=1)`` -> an order placed by the checkout service."""
    from warenhaus.checkout import services as checkout

    def make(*, user=None, variant, quantity=1, email=None, payment_method="invoice"):
        cart, _ = checkout.create_cart(user=user)
        checkout.add_line(cart_id=cart.id, user=user, sku=variant.sku, quantity=quantity)
        return checkout.place_order(
            cart_id=cart.id,
            user=user,
            email=email or (user.email if user else "gast@example.de"),
            shipping_address=address,
            payment_method=payment_method,
        )

    return make


@pytest.fixture
def login_client(client):
    """``login_client(user)`` -> the test client, logged in as ``user``."""

    def make(user):
        client.force_login(user)
        return client

    return make


# --- browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(
            f"{CHROMIUM} is not installed (apt-get install chromium); browser tests need it"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(_browser, live_server):
    """A fresh browser context (own cookies) with a page; ``page.url_for(path)`` joins the live
    server's address."""
    context = _browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.url_for = lambda path: f"{live_server.url}{path}"
    yield page
    context.close()


@pytest.fixture
def new_browser_page(_browser, live_server):
    """For tests that need a second person at the same time."""
    contexts = []

    def make():
        context = _browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.url_for = lambda path: f"{live_server.url}{path}"
        return page

    yield make
    for c in contexts:
        c.close()


@pytest.fixture
def nojs_page(_browser, live_server):
    """A page with JavaScript switched off: every page must work without it."""
    context = _browser.new_context(locale="de-DE", java_script_enabled=False)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.url_for = lambda path: f"{live_server.url}{path}"
    yield page
    context.close()


def browser_login(
    page, email: str, password: str = "Geheim-Passwort-1", next_path: str = ""
) -> None:
    page.goto(page.url_for("/account/login/" + (f"?next={next_path}" if next_path else "")))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("form[action='/account/login/'] button[type=submit]")
