"""Logging in when strangers have used up the account's login allowance, in a real browser
without JavaScript: the refusal offers a login link, the mail's link logs the owner in."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
from django.core import mail

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "Geheim-Passwort-1"


def test_a_locked_out_owner_logs_in_with_the_mailed_link_without_javascript(
    nojs_page, make_user, settings
):
    from warenhaus.accounts import services
    from warenhaus.core.errors import DomainError
    from warenhaus.notifications.models import OutboxMessage
    from warenhaus.notifications.services import deliver

    settings.LOGIN_RATE_LIMIT_ACCOUNT = 3
    owner = make_user(email="erika@example.de")
    for n in range(3):
        with pytest.raises(DomainError):
            services.login(email=owner.email, password="geraten", client_ip=f"203.0.113.{n}")
    page = nojs_page
    page.goto(page.url_for("/account/login/"))
    page.fill("input[name=email]", owner.email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form[action='/account/login/']").get_by_role(
        "button", name="Anmelden"
    ).click()
    assert "Zu viele Versuche" in page.inner_text("#error")
    page.get_by_role("button", name="Anmeldelink zusenden").click()
    page.wait_for_selector("#login-link-sent")
    assert deliver(OutboxMessage.objects.get(kind="login_link").pk) == "sent"
    link = re.search(r"\S+/account/login/link/\S+/", mail.outbox[-1].body).group(0)
    page.goto(page.url_for(urlparse(link).path))  # SITE_URL is not the live server's address
    page.locator("main").get_by_role("button", name="Anmelden").click()
    page.wait_for_selector("text=Willkommen zurück!")
    assert "Meine Bestellungen" in page.content()
