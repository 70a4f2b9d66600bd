"""Login links: mailed through the outbox to known accounts only, limited, single use,
short-lived, and stored nowhere in a usable form."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail

from warenhaus.accounts import login_links
from warenhaus.notifications.models import OutboxMessage
from warenhaus.notifications.services import deliver

try:
    from tests.conftest import requires_postgres
except ImportError:
    from conftest import requires_postgres

KEY = re.compile(r"/account/login/link/([^/\s]+)/")


def _send_and_read_key(email: str) -> str:
    msg = OutboxMessage.objects.filter(kind="login_link", to_email=email).latest("pk")
    assert deliver(msg.pk) == "sent"
    return KEY.search(mail.outbox[-1].body).group(1)


def test_a_login_link_logs_in_once(api, shopper):
    assert api.post("/auth/login-link", {"email": shopper.email.upper()}).status_code == 202
    key = _send_and_read_key(shopper.email)
    resp = api.post("/auth/login-link/confirm", {"key": key})
    assert resp.status_code == 200 and resp.json()["user"]["email"] == shopper.email
    api.token = resp.json()["token"]
    assert api.get("/me").json()["email"] == shopper.email
    again = api.post("/auth/login-link/confirm", {"key": key})
    assert again.status_code == 401 and again.json()["code"] == "invalid_login_link"


def test_a_login_link_expires(api, shopper, settings, monkeypatch):
    from warenhaus.core import clock

    key = login_links.make_key(shopper)
    later = clock.now() + timedelta(seconds=settings.LOGIN_LINK_TTL + 1)
    monkeypatch.setattr(login_links, "now", lambda: later)
    resp = api.post("/auth/login-link/confirm", {"key": key})
    assert resp.status_code == 401 and resp.json()["code"] == "invalid_login_link"


@pytest.mark.parametrize("key", ["", "kaputt", "1-2-3", "zz-zz-" + "0" * 40, "x" * 100])
def test_made_up_keys_are_refused_cleanly(api, shopper, key):
    resp = api.post("/auth/login-link/confirm", {"key": key})
    assert resp.status_code == 401 and resp.json()["code"] == "invalid_login_link"


def test_a_new_password_voids_an_outstanding_link(api, shopper):
    key = login_links.make_key(shopper)
    shopper.set_password("Ganz-neues-Passwort-7")
    shopper.save()
    assert api.post("/auth/login-link/confirm", {"key": key}).status_code == 401


def test_the_answer_is_the_same_for_unknown_addresses_and_only_known_accounts_get_mail(
    api, shopper, make_user
):
    blocked = make_user()
    blocked.is_active = False
    blocked.save()
    for email in ("niemand@example.de", blocked.email, shopper.email):
        resp = api.post("/auth/login-link", {"email": email})
        assert resp.status_code == 202 and resp.json() == {
            "detail": "If an account exists for this address, a login link is on its way. It works once, for a few minutes."
        }
    assert list(OutboxMessage.objects.values_list("to_email", flat=True)) == [shopper.email]
    bad = api.post("/auth/login-link", {"email": "kein-at"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_email"


def test_the_outbox_never_holds_a_usable_key(api, shopper):
    api.post("/auth/login-link", {"email": shopper.email})
    key = _send_and_read_key(shopper.email)
    msg = OutboxMessage.objects.get(kind="login_link")
    stored = str(msg.context) + msg.subject + msg.body_text + msg.body_html
    assert key not in stored and key.rsplit("-", 1)[-1] not in stored
    assert "/account/login/link/" in msg.body_text  # the link's shape is kept, its key is not


def test_a_login_link_mail_speaks_the_account_language(api, make_user):
    from warenhaus.accounts.models import User

    user = make_user()
    User.objects.filter(pk=user.pk).update(preferred_language="en")
    api.post("/auth/login-link", {"email": user.email})
    _send_and_read_key(user.email)
    sent = mail.outbox[-1]
    assert (
        sent.subject == "Your login link for Warenhaus" and "/en/account/login/link/" in sent.body
    )


def test_asking_for_links_is_limited_per_address_and_per_client(api, shopper, settings):
    for _ in range(settings.LOGIN_LINK_LIMIT_EMAIL):
        assert api.post("/auth/login-link", {"email": shopper.email}).status_code == 202
    refused = api.post("/auth/login-link", {"email": shopper.email})
    assert (
        refused.status_code == 429
        and refused.json()["code"] == "rate_limited"
        and int(refused["Retry-After"]) > 0
    )
    assert OutboxMessage.objects.count() == settings.LOGIN_LINK_LIMIT_EMAIL
    # the links strangers had sent outlive the refusal: the owner uses one of them
    assert settings.LOGIN_LINK_TTL >= settings.LOGIN_LINK_WINDOW
    assert (
        api.post("/auth/login-link/confirm", {"key": _send_and_read_key(shopper.email)}).status_code
        == 200
    )
    # one client asking for many addresses
    answers = [
        api.post("/auth/login-link", {"email": f"jemand{i}@example.de"}).status_code
        for i in range(settings.LOGIN_LINK_LIMIT_ADDRESS)
    ]
    assert answers[-1] == 429


def test_a_staff_account_without_a_password_gets_no_link(api, db):
    from warenhaus.accounts.services import create_staff

    create_staff(email="ohne@warenhaus.example", password=None, roles=["support"])
    assert api.post("/auth/login-link", {"email": "ohne@warenhaus.example"}).status_code == 202
    assert not OutboxMessage.objects.exists()


def test_a_link_for_an_account_blocked_meanwhile_is_not_sent(api, shopper):
    api.post("/auth/login-link", {"email": shopper.email})
    shopper.is_active = False
    shopper.save()
    msg = OutboxMessage.objects.get(kind="login_link")
    assert deliver(msg.pk) == "suppressed"


@requires_postgres
@pytest.mark.postgres
@pytest.mark.xdist_group("pg-concurrency")
@pytest.mark.django_db(transaction=True)
def test_racing_uses_of_one_link_log_in_once(shopper):
    from tests.concurrency.support import run_together
    from warenhaus.core.errors import DomainError

    key = login_links.make_key(shopper)

    def use(i):
        try:
            return login_links.confirm(key=key, client_ip=f"192.0.2.{i}").email
        except DomainError as err:
            return err.code

    outcomes = run_together(10, use)
    assert sorted(outcomes) == sorted([shopper.email] + ["invalid_login_link"] * 9), outcomes
