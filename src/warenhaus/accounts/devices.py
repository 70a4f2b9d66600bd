"""Device cookies: a browser that has logged in to an account before is not locked out of it by
strangers' guessing (OWASP, "Slow down online guessing attacks with device cookies").

After a successful login the browser gets a signed cookie that names the account (a keyed
digest of its e-mail address, not the address) with a random nonce. A password login that shows
such a cookie for the account it tries is limited per cookie, not per account or address
(:func:`warenhaus.accounts.services.login`); a cookie whose own limit is used up counts as no
cookie. One cookie remembers the last few accounts used in the browser.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core import signing
from django.utils.crypto import salted_hmac

COOKIE = "wh_device"
SALT = "warenhaus.accounts.device"
#: accounts one browser is remembered for (a family computer)
MAX_ACCOUNTS = 5


def _account(email: str) -> str:
    return salted_hmac(SALT, (email or "").strip().lower(), algorithm="sha256").hexdigest()[:24]


def _entries(value: str) -> list[list[str]]:
    if not value:
        return []
    try:
        entries = signing.loads(value, salt=SALT, max_age=settings.DEVICE_COOKIE_DAYS * 86400)
    except (signing.BadSignature, ValueError):
        return []
    if not isinstance(entries, list):
        return []
    return [
        e
        for e in entries
        if isinstance(e, list) and len(e) == 2 and all(isinstance(x, str) for x in e)
    ]


def nonce_for(value: str, email: str) -> str | None:
    """The nonce of the device cookie ``value`` for the account of ``email``; None if the cookie
    is missing, forged, expired, or for other accounts."""
    account = _account(email)
    return next((nonce for acc, nonce in _entries(value) if acc == account), None)


def remember(value: str, email: str) -> str:
    """The cookie value after a successful login to ``email``'s account in this browser: a fresh
    nonce for it first, the other accounts it remembers after."""
    account = _account(email)
    others = [e for e in _entries(value) if e[0] != account]
    return signing.dumps(
        [[account, secrets.token_urlsafe(16)], *others][:MAX_ACCOUNTS], salt=SALT, compress=True
    )


# --- over HTTP ------------------------------------------------------------------------------


def from_request(request) -> str:
    return request.COOKIES.get(COOKIE, "")[:4096]


def set_after_login(request, response, email: str) -> None:
    """Give the browser (or API client) a device cookie for the account it has just logged in to."""
    response.set_cookie(
        COOKIE,
        remember(from_request(request), email),
        max_age=settings.DEVICE_COOKIE_DAYS * 86400,
        secure=settings.SESSION_COOKIE_SECURE or request.is_secure(),
        httponly=True,
        samesite="Lax",
    )
