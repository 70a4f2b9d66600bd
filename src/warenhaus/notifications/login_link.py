"""The login-link mail: its key is made when the worker renders it, and blanked out of what the
outbox keeps; it goes only to an account that is still active under that address."""

from __future__ import annotations

import re

from django.conf import settings

from warenhaus.accounts import login_links
from warenhaus.accounts.models import User

from . import mails
from .audience import send_check


def link_context(ctx: dict) -> dict:
    key = login_links.make_key(ctx["user"])
    url = mails.page_url("web:login_link_confirm", key, f"/account/login/link/{key}/")
    return {"login_url": url, "valid_minutes": max(1, settings.LOGIN_LINK_TTL // 60)}


_KEY = re.compile(r"\b[0-9a-z]{1,13}-[0-9a-z]{1,13}-[0-9a-f]{40}\b")


def hide_key(text: str) -> str:
    """What the outbox keeps of a sent login link: no usable key."""
    return _KEY.sub("…", text)


def still_the_account(message) -> str | None:
    ok = User.objects.filter(email=message.to_email, is_active=True).exists()
    return None if ok else "the account is no longer active under this address"


def register() -> None:
    """The mail's builder, its redactor and its send-time check."""
    mails.BUILDERS["login_link"] = link_context
    mails.REDACTORS["login_link"] = hide_key
    send_check("login_link")(still_the_account)
