"""Registering, logging in, issuing tokens, making staff."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from warenhaus.core import audit, ratelimit
from warenhaus.core.clock import now
from warenhaus.core.errors import Conflict, DomainError, ValidationFailed

from .models import ApiToken, User
from .roles import ROLES


def normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationFailed("Please enter a valid e-mail address.", code="invalid_email") from None
    return email


def register_customer(*, email: str, password: str, name: str = "", language: str = "de") -> User:
    email = normalise_email(email)
    try:
        validate_password(password, User(email=email))
    except ValidationError as err:
        raise ValidationFailed(" ".join(err.messages), code="weak_password") from None
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=password, name=(name or "").strip()[:150], preferred_language=language)
    except IntegrityError:
        raise Conflict("An account with this e-mail address already exists.", code="email_taken") from None


def login(*, email: str, password: str, client_ip: str = "", request=None) -> User:
    """Check a password, with guessing limited.

    Every attempt is counted *before* the (slow) password check, atomically, so racing
    requests cannot slip past the limit. The strict limit is per e-mail *and* client address:
    a stranger guessing from elsewhere cannot lock the owner out. Looser limits per e-mail alone
    (a distributed guess at one account) and per address alone (one client guessing many
    accounts) stop the rest. A successful login clears its own strict counter.
    """
    email = (email or "").strip().lower()
    window, limit = settings.LOGIN_RATE_WINDOW, settings.LOGIN_RATE_LIMIT
    msg = "Too many login attempts. Please wait before trying again."
    pair = f"{email}|{client_ip}"
    ratelimit.hit_or_refuse("login", pair, limit=limit, window=window, message=msg)
    ratelimit.hit_or_refuse("login-email", email, limit=limit * 10, window=window, message=msg)
    if client_ip:
        ratelimit.hit_or_refuse("login-ip", client_ip, limit=limit * 20, window=window, message=msg)
    user = authenticate(request, email=email, password=password)
    if user is None or not user.is_active:
        raise DomainError("E-mail address or password is wrong.", code="invalid_credentials", status=401)
    ratelimit.reset("login", pair, window)
    return user


def issue_token(*, user: User) -> str:
    raw = ApiToken.new_raw()
    ApiToken.objects.create(user=user, digest=ApiToken.digest_of(raw), expires_at=now() + timedelta(days=settings.API_TOKEN_TTL_DAYS))
    return raw


def user_for_token(raw: str) -> User | None:
    if not raw or len(raw) > 200:
        return None
    tok = ApiToken.objects.select_related("user").filter(digest=ApiToken.digest_of(raw), expires_at__gt=now()).first()
    if tok is None or not tok.user.is_active:
        return None
    return tok.user


STAFF_MIN_PASSWORD_LENGTH = 12


def _staff_password(email: str, password: str | None) -> str | None:
    """Staff passwords: at least 12 characters and not a common one. ``None`` (no password
    given) makes an account that cannot log in until a password is set."""
    if password is None:
        return None
    if len(password) < STAFF_MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"A staff password needs at least {STAFF_MIN_PASSWORD_LENGTH} characters.", code="weak_password")
    try:
        validate_password(password, User(email=email))
    except ValidationError as err:
        raise ValidationFailed(" ".join(err.messages), code="weak_password") from None
    return password


def create_staff(*, email: str, password: str | None, roles: list[str], name: str = "", actor=None, source: str = "cli") -> User:
    email = normalise_email(email)
    password = _staff_password(email, password)
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValidationFailed(f"Unknown role(s): {', '.join(sorted(unknown)) or 'none given'}. Roles: {', '.join(ROLES)}.", code="unknown_role")
    with transaction.atomic():
        user = User.objects.filter(email=email).first()
        before = None
        if user is None:
            user = User.objects.create_user(email=email, password=password, name=name, is_staff=True)
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
        after = {"roles": sorted(set(user.groups.values_list("name", flat=True)) | ({"admin"} if user.is_superuser else set()))}
        audit.record(actor=actor, action="staff.create" if before is None else "staff.update_roles", obj=user, before=before, after=after, source=source)
    user._warenhaus_roles = None
    return user
