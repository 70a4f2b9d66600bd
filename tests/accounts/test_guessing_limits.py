"""Guessing limits that stop guessers, not crowds, and cannot be turned against an account's
owner (security probe, issue 13, finding 5).

The probe: 200 correct logins by 3 accounts from one address locked out a fourth shopper; the
31st valid voucher apply from one address was refused; 80 wrong passwords from 8 addresses
locked the owner (staff too) out from a fresh address for 13 minutes.
"""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from warenhaus.core import ratelimit

try:
    from tests.conftest import ApiClient, requires_postgres
except ImportError:
    from conftest import ApiClient, requires_postgres

PASSWORD = "Geheim-Passwort-1"
NAT = "198.51.100.20"


def _client(address: str) -> ApiClient:
    """A phone of its own (own cookies) behind ``address``."""
    return ApiClient(Client(REMOTE_ADDR=address))


def _log_in(api: ApiClient, email: str, password: str = PASSWORD):
    return api.post("/auth/token", {"email": email, "password": password})


def _mailed_key(email: str) -> str:
    """Deliver the login-link mail waiting for ``email``; the key in the link it carried."""
    from warenhaus.notifications.models import OutboxMessage
    from warenhaus.notifications.services import deliver

    msg = OutboxMessage.objects.filter(kind="login_link", to_email=email).latest("pk")
    assert deliver(msg.pk) == "sent"
    return re.search(r"/account/login/link/([^/\s]+)/", mail.outbox[-1].body).group(1)


def _public_code(make_user, code: str) -> None:
    from datetime import timedelta

    from warenhaus.core.clock import now
    from warenhaus.promotions import services

    campaign = services.create_campaign(
        actor=make_user(roles=["promotions"]),
        code_mode="public",
        public_code=code,
        name="Ansturm",
        discount_kind="fixed",
        discount_value="10.00",
        min_basket="30.00",
        budget="10000.00",
        total_limit=1000,
        valid_until=now() + timedelta(days=1),
    )
    services.approve_campaign(
        campaign_id=campaign.pk, actor=make_user(roles=["promotions_approver"]), override_reason=""
    )


def test_two_hundred_shoppers_behind_one_address_are_served_and_guessing_from_it_is_still_stopped(
    make_user, make_product, settings
):
    """Default limits. Each shopper logs in and applies the public code from the same carrier
    NAT address; then a guesser at that address is stopped, for codes and for passwords."""
    _public_code(make_user, "RUSH10")
    sku = make_product(price="49.97", on_hand=1000).variants.get().sku
    shoppers = [make_user(email=f"kunde{i}@example.de") for i in range(200)]
    for i, shopper in enumerate(shoppers):
        phone = _client(NAT)
        resp = _log_in(phone, shopper.email)
        assert resp.status_code == 200, (i, resp.json())
        phone.token = resp.json()["token"]
        cart_id = phone.post("/carts").json()["id"]
        assert phone.post(f"/carts/{cart_id}/lines", {"sku": sku, "quantity": 1}).status_code == 200
        resp = phone.post(f"/carts/{cart_id}/vouchers", {"code": "RUSH10"})
        assert resp.status_code == 200, (i, resp.json())
        assert resp.json()["totals"]["discount"]["amount"] == "10.00"

    guesser = _client(NAT)
    refused = None
    for i in range(settings.VOUCHER_ATTEMPT_LIMIT_ADDRESS + 1):
        cart_id = guesser.post("/carts").json()["id"]  # a fresh cart for each guess does not help
        guesser.post(f"/carts/{cart_id}/lines", {"sku": sku, "quantity": 1})
        refused = guesser.post(f"/carts/{cart_id}/vouchers", {"code": f"RATE{i:03d}X"})
        if i < settings.VOUCHER_ATTEMPT_LIMIT_ADDRESS:
            assert refused.json()["code"] == "voucher_unknown"
    assert (
        refused.status_code == 429
        and refused.json()["code"] == "rate_limited"
        and int(refused["Retry-After"]) > 0
    )

    for i in range(settings.LOGIN_RATE_LIMIT_ADDRESS):  # one wrong password at each account
        assert _log_in(guesser, shoppers[i].email, "falsch-geraten").status_code == 401
    refused = _log_in(guesser, shoppers[-1].email, "falsch-geraten")
    assert (
        refused.status_code == 429
        and refused.json()["code"] == "rate_limited"
        and int(refused["Retry-After"]) > 0
    )
    # the crowd's own successes are not what counted
    assert (
        ratelimit.hits("login-ip", NAT, settings.LOGIN_RATE_WINDOW)
        == settings.LOGIN_RATE_LIMIT_ADDRESS + 1
    )


@pytest.mark.parametrize("roles", [None, ["support"]], ids=["shopper", "staff"])
def test_wrong_passwords_from_eight_addresses_do_not_lock_the_owner_out(make_user, settings, roles):
    """The account's own limit is reached by strangers: their guessing stays refused, from
    anywhere, while the owner gets in from the browser that logged in before, and from a fresh
    one with a mailed login link."""
    settings.LOGIN_RATE_LIMIT_ACCOUNT = 50
    owner = make_user(roles=roles)
    laptop = _client("192.0.2.10")
    assert _log_in(laptop, owner.email).status_code == 200  # last week, at home: the device cookie
    assert laptop.client.cookies["wh_device"]["httponly"]

    for n in range(8):
        stranger = _client(f"203.0.113.{n + 1}")
        answers = {_log_in(stranger, owner.email, f"rate-{n}-{i}").status_code for i in range(10)}
        assert answers <= {401, 429}
    for address in ("203.0.113.1", "203.0.113.99"):  # an old and a fresh address of the guessers
        refused = _log_in(_client(address), owner.email, "noch-ein-versuch")
        assert (
            refused.status_code == 429
            and refused.json()["code"] == "rate_limited"
            and refused["Retry-After"]
        )
        assert "login-link" in refused.json()["detail"]

    resp = _log_in(laptop, owner.email)
    assert resp.status_code == 200, resp.json()
    assert (
        _client("192.0.2.10")
        .get("/me", headers={"Authorization": f"Bearer {resp.json()['token']}"})
        .json()["email"]
        == owner.email
    )

    phone = _client("192.0.2.77")
    assert (
        _log_in(phone, owner.email).status_code == 429
    )  # a fresh device: the password path is closed ...
    assert phone.post("/auth/login-link", {"email": owner.email}).status_code == 202
    resp = phone.post(
        "/auth/login-link/confirm", {"key": _mailed_key(owner.email)}
    )  # ... the mailed link is not
    assert resp.status_code == 200, resp.json()
    assert resp.json()["user"]["email"] == owner.email and resp.json()["token"]
    assert "wh_device" in phone.client.cookies
    assert _log_in(phone, owner.email).status_code == 200  # and this phone is known from now on

    assert (
        _log_in(_client("203.0.113.99"), owner.email, PASSWORD).status_code == 429
    )  # still closed to strangers


def test_a_device_cookie_allows_only_a_few_guesses_and_only_for_its_own_account(
    make_user, settings
):
    settings.LOGIN_RATE_LIMIT = 3
    owner, other = make_user(), make_user()
    browser = _client("192.0.2.10")
    assert _log_in(browser, owner.email).status_code == 200
    answers = [_log_in(browser, owner.email, f"falsch-{i}").status_code for i in range(8)]
    # three on the cookie's own allowance, three on the address's (as any client), then refused
    assert answers == [401] * 6 + [429] * 2
    for i in range(3):
        assert _log_in(browser, other.email, f"falsch-{i}").status_code == 401
    assert (
        _log_in(browser, other.email).status_code == 429
    )  # the owner's cookie does not open another account


def test_a_forged_device_cookie_counts_as_none(make_user, settings):
    settings.LOGIN_RATE_LIMIT = 2
    owner = make_user()
    browser = _client("192.0.2.10")
    browser.client.cookies["wh_device"] = "eyJhIjoiYiJ9:1abc:forged"
    for i in range(2):
        assert _log_in(browser, owner.email, f"falsch-{i}").status_code == 401
    assert _log_in(browser, owner.email).status_code == 429


def test_a_successful_login_gives_its_count_back(make_user, settings):
    owner = make_user()
    for _ in range(5):
        assert _log_in(_client(NAT), owner.email).status_code == 200
    window = settings.LOGIN_RATE_WINDOW
    assert (
        ratelimit.hits("login-ip", NAT, window) == 0
        and ratelimit.hits("login-email", owner.email, window) == 0
    )


@requires_postgres
@pytest.mark.postgres
@pytest.mark.xdist_group("pg-concurrency")
@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_passwords_cannot_pass_the_limit(make_user, settings):
    """20 threads guess one account's password at once from one address, limit 5: exactly 5
    are checked, the rest refused, and every attempt was counted before its check."""
    from tests.concurrency.support import run_together
    from warenhaus.accounts import services
    from warenhaus.core.errors import DomainError

    settings.LOGIN_RATE_LIMIT = 5
    owner = make_user()

    def guess(i):
        try:
            services.login(email=owner.email, password=f"falsch-{i}", client_ip="203.0.113.9")
        except DomainError as err:
            return err.code
        return "logged_in"

    outcomes = run_together(20, guess)
    assert sorted(outcomes) == ["invalid_credentials"] * 5 + ["rate_limited"] * 15, outcomes
    assert ratelimit.hits("login", f"{owner.email}|203.0.113.9", settings.LOGIN_RATE_WINDOW) == 20
