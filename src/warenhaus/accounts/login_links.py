"""Login links: a one-time link, mailed to an account's own address, that logs its owner in.

It is the way in when the password login of the account is throttled by strangers' guessing
(and when the password is forgotten): guessing stays stopped, and the owner is not locked out.

1. ``request_link``: throttled per e-mail and per client address (each attempt counted first);
   the answer is the same whether an account exists; for a known, active account that may log
   in, :data:`.events.login_link_requested` is sent, and notifications put the mail in the outbox.
2. The worker renders the mail and makes the key then (with :func:`make_key`): the outbox keeps
   only a reference to the account, and the sent text with the key blanked out.
3. ``confirm``: the key is ``<account>-<time>-<HMAC>`` keyed with SECRET_KEY over the account's
   password hash, last login and address, so nothing about it is stored, it expires after
   ``LOGIN_LINK_TTL`` seconds, and any login (this one included) or a new password voids it.
   Using it moves ``last_login`` with a compare-and-set, so of two racing uses one wins.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import base36_to_int, int_to_base36

from warenhaus.core import ratelimit
from warenhaus.core.clock import now

from . import errors, events
from .models import User

SALT = "warenhaus.accounts.login_links"
MAX_KEY_LENGTH = 100


def _timestamp() -> int:
    return int(now().timestamp())


def _signature(user: User, ts: int) -> str:
    last = user.last_login.isoformat() if user.last_login else ""
    value = f"{user.pk}|{ts}|{user.password}|{last}|{user.email}|{user.is_active}"
    return salted_hmac(SALT, value, algorithm="sha256").hexdigest()[:40]


def make_key(user: User) -> str:
    ts = _timestamp()
    return f"{int_to_base36(user.pk)}-{int_to_base36(ts)}-{_signature(user, ts)}"


def user_for_key(key: str) -> User | None:
    """The account a key logs in to, while it is valid; None otherwise. Does not use it up."""
    parts = (key or "")[:MAX_KEY_LENGTH].split("-")
    if len(parts) != 3:
        return None
    try:
        pk, ts = base36_to_int(parts[0]), base36_to_int(parts[1])
    except ValueError:
        return None
    age = _timestamp() - ts
    if age < 0 or age > settings.LOGIN_LINK_TTL:
        return None
    user = User.objects.filter(pk=pk, is_active=True).first()
    if (
        user is None
        or not user.has_usable_password()
        or not constant_time_compare(parts[2], _signature(user, ts))
    ):
        return None
    return user


def request_link(*, email: str, client_ip: str = "") -> None:
    """Mail a login link to ``email`` if it is a known, active account; the same answer either
    way. Refused with 429 beyond ``LOGIN_LINK_LIMIT_EMAIL`` per address and
    ``LOGIN_LINK_LIMIT_ADDRESS`` per client address in ``LOGIN_LINK_WINDOW``; a link lives at
    least as long as that window, so one that strangers had sent stays usable for the owner."""
    from .services import normalise_email

    email = normalise_email(email)
    limits = [("login-link-email", email, settings.LOGIN_LINK_LIMIT_EMAIL)]
    if client_ip:
        limits.append(("login-link-addr", client_ip, settings.LOGIN_LINK_LIMIT_ADDRESS))
    ratelimit.hit_all_or_refuse(
        limits,
        window=settings.LOGIN_LINK_WINDOW,
        message="Login links for this address were asked for several times just now; please use the newest mail, or wait before asking again.",
    )
    user = User.objects.filter(email=email, is_active=True).first()
    if user is None or not user.has_usable_password():
        return
    with transaction.atomic():
        events.login_link_requested.send(user=user)  # notifications mail the link


def confirm(*, key: str, client_ip: str = "") -> User:
    """Use a login link: the account it logs in to. Unknown, expired or used keys are 401
    ``invalid_login_link``; they count against the client address (as failed logins do)."""
    attempt = ratelimit.attempt(
        [("login-link-fail", client_ip or "-", settings.LOGIN_RATE_LIMIT_ADDRESS)],
        window=settings.LOGIN_RATE_WINDOW,
        message="Too many login attempts. Please wait before trying again.",
    )
    if attempt.refusal is not None:
        raise attempt.refusal
    user = user_for_key(key)
    if user is not None:
        seen = User.objects.filter(pk=user.pk)
        seen = (
            seen.filter(last_login=user.last_login)
            if user.last_login
            else seen.filter(last_login__isnull=True)
        )
        if seen.update(last_login=now()) == 1:
            attempt.give_back()
            return user
    raise errors.refusal("invalid_login_link")
