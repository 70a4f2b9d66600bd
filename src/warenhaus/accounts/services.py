"""Registering, logging in, issuing tokens, making staff."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from warenhaus.core import audit, ratelimit
from warenhaus.core.clock import now
from warenhaus.core.errors import ValidationFailed
from warenhaus.core.models import AuditSource

from . import devices, errors, events, passwords
from .models import ApiToken, User
from .roles import ROLES


def normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise errors.refusal("invalid_email") from None
    return email


def register_customer(
    *, email: str, password: str, name: str = "", language: str = "de", client_ip: str = ""
) -> User:
    """A new shopper's account. Sign-ups per client address are limited (a short burst and an
    hour, ``REGISTRATION_*``), counted before the account is made but after the input is checked,
    so a typo does not use the allowance up."""
    email = normalise_email(email)
    name = (name or "").strip()[:150]
    passwords.check(password, email=email, name=name)
    if client_ip:
        msg = "Too many accounts were created from your network just now. Please wait before trying again."
        ratelimit.hit_or_refuse(
            "register-burst",
            client_ip,
            limit=settings.REGISTRATION_BURST_LIMIT,
            window=settings.REGISTRATION_BURST_WINDOW,
            message=msg,
        )
        ratelimit.hit_or_refuse(
            "register",
            client_ip,
            limit=settings.REGISTRATION_RATE_LIMIT,
            window=settings.REGISTRATION_RATE_WINDOW,
            message=msg,
        )
    try:
        with transaction.atomic():
            return User.objects.create_user(
                email=email, password=password, name=name, preferred_language=language
            )
    except IntegrityError:
        raise errors.refusal("email_taken") from None


LOGIN_REFUSED = "Too many failed logins. Please wait before trying again, or ask for a login link by e-mail (POST /api/v1/auth/login-link)."


def _login_limits(email: str, client_ip: str, device: str) -> list[tuple[str, str, int]]:
    """What a password login counts against. A browser with this account's device cookie
    (:mod:`.devices`) only against its cookie, so strangers guessing elsewhere cannot lock it
    out; any other client against the e-mail with its address (strict), the e-mail alone (a
    guess spread over many addresses) and the address alone (one client guessing many accounts)."""
    limit = settings.LOGIN_RATE_LIMIT
    nonce = devices.nonce_for(device, email) if device else None
    if nonce and ratelimit.hits("login-device", nonce, settings.LOGIN_RATE_WINDOW) < limit:
        return [("login-device", nonce, limit)]
    limits = [
        ("login", f"{email}|{client_ip}", limit),
        ("login-email", email, settings.LOGIN_RATE_LIMIT_ACCOUNT),
    ]
    if client_ip:
        limits.append(("login-ip", client_ip, settings.LOGIN_RATE_LIMIT_ADDRESS))
    return limits


def login(
    *, email: str, password: str, client_ip: str = "", device: str = "", request=None
) -> User:
    """Check a password, with guessing limited; ``device`` is the client's device cookie.

    Every attempt is counted *before* the (slow) password check, atomically, so racing
    requests cannot slip past a limit; a successful login gives its count back, so the limits
    count failures only, and clears its own strict counter. When strangers have used up an
    account's limit, its owner still gets in from a browser that logged in before, or with a
    login link (:mod:`.login_links`), while the password guessing stays refused.
    """
    email = (email or "").strip().lower()
    window = settings.LOGIN_RATE_WINDOW
    limits = _login_limits(email, client_ip, device)
    attempt = ratelimit.attempt(limits, window=window, message=LOGIN_REFUSED)
    if attempt.refusal is not None:
        raise attempt.refusal
    user = authenticate(request, email=email, password=password)
    if user is None or not user.is_active:
        raise errors.refusal("invalid_credentials")
    attempt.give_back()
    name, key, _limit = limits[0]
    ratelimit.reset(name, key, window)
    return user


def issue_token(*, user: User) -> str:
    raw = ApiToken.new_raw()
    ApiToken.objects.create(
        user=user,
        digest=ApiToken.digest_of(raw),
        expires_at=now() + timedelta(days=settings.API_TOKEN_TTL_DAYS),
    )
    return raw


def bring_guest_cart(*, user: User, cart_id: str) -> str | None:
    """After a sign-in: the shopper brought the anonymous cart ``cart_id``. Whoever keeps carts
    hears it (:data:`.events.signed_in_with_cart`); returns the id of the shopper's cart then
    (None when there is none)."""
    outcome: dict = {}
    with transaction.atomic():
        events.signed_in_with_cart.send(user=user, cart_id=cart_id, outcome=outcome)
    return outcome.get("cart_id")


def user_for_token(raw: str) -> User | None:
    if not raw or len(raw) > 200:
        return None
    tok = (
        ApiToken.objects.select_related("user")
        .filter(digest=ApiToken.digest_of(raw), expires_at__gt=now())
        .first()
    )
    if tok is None or not tok.user.is_active:
        return None
    return tok.user


def _staff_password(email: str, password: str | None, name: str = "") -> str | None:
    """A staff password meets the policy of every account (:mod:`.passwords`). ``None`` (no
    password given) makes an account that cannot log in until a password is set."""
    if password is not None:
        passwords.check(password, email=email, name=name)
    return password


def create_staff(
    *,
    email: str,
    password: str | None,
    roles: list[str],
    name: str = "",
    actor=None,
    source: str = AuditSource.CLI,
) -> User:
    email = normalise_email(email)
    password = _staff_password(email, password, name)
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValidationFailed(
            f"Unknown role(s): {', '.join(sorted(unknown)) or 'none given'}. Roles: {', '.join(ROLES)}.",
            code="unknown_role",
        )
    with transaction.atomic():
        user = User.objects.filter(email=email).first()
        before = None
        if user is None:
            user = User.objects.create_user(
                email=email, password=password, name=name, is_staff=True
            )
            if password is None:
                user.set_unusable_password()
                user.save(update_fields=["password"])
        else:
            before = {"roles": sorted(user.groups.values_list("name", flat=True))}
            if password:
                user.set_password(password)
            user.is_staff = True
            user.save()
        for role in roles:
            group, _ = Group.objects.get_or_create(name=role)
            user.groups.add(group)
        if "admin" in roles:
            user.is_superuser = True
            user.save(update_fields=["is_superuser"])
        after = {
            "roles": sorted(
                set(user.groups.values_list("name", flat=True))
                | ({"admin"} if user.is_superuser else set())
            )
        }
        audit.record(
            actor=actor,
            action="staff.create" if before is None else "staff.update_roles",
            obj=user,
            before=before,
            after=after,
            source=source,
        )
    user._warenhaus_roles = None
    return user
