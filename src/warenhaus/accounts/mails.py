"""The login-link mail: its key is made when the worker renders it, and blanked out of what the
outbox keeps; it goes only to an account that is still active under that address."""

from __future__ import annotations

import re

from django.conf import settings

from warenhaus.notifications import mails
from warenhaus.notifications.audience import send_check

from . import login_links
from .models import User


def link_context(ctx: dict) -> dict:
    key = login_links.make_key(ctx["user"])
    url = mails.page_url("web:login_link_confirm", key, f"/account/login/link/{key}/")
    return {"login_url": url, "valid_minutes": max(1, settings.LOGIN_LINK_TTL // 60)}


_KEY = re.compile(r"\b[0-9a-z]{1,13}-[0-9a-z]{1,13}-[0-9a-f]{40}\b")


def hide_key(text: str) -> str:
    """What the outbox keeps of a sent login link: no usable key."""
    return _KEY.sub("…", text)


@send_check("login_link")
def still_the_account(message) -> str | None:
    ok = User.objects.filter(email=message.to_email, is_active=True).exists()
    return None if ok else "the account is no longer active under this address"


mails.BUILDERS["login_link"] = link_context
mails.REDACTORS["login_link"] = hide_key
