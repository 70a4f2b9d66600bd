"""Accounts over the API: register, get a token (with a password or a mailed login link), who am I."""

from __future__ import annotations

from django.http import HttpResponse
from ninja import Schema
from pydantic import Field

from warenhaus.core.apiutil import AUTH, ApiRouter, caller, client_ip, require_user
from warenhaus.core.schemas import Out, problems

from . import devices, login_links, services
from .roles import roles_of

router = ApiRouter(tags=["accounts"])


class RegisterIn(Schema):
    email: str = Field(max_length=254)
    password: str = Field(max_length=200)
    name: str = Field(default="", max_length=150)
    language: str = Field(default="de", pattern="^(de|en)$")


class TokenIn(Schema):
    email: str = Field(max_length=254)
    password: str = Field(max_length=200)
    cart_id: str | None = Field(
        default=None,
        max_length=64,
        description="An anonymous cart to merge into the shopper's cart.",
    )


class LoginLinkIn(Schema):
    email: str = Field(max_length=254)


class LoginLinkConfirmIn(Schema):
    key: str = Field(
        max_length=login_links.MAX_KEY_LENGTH,
        description="The key of the mailed link (the last part of its path).",
    )
    cart_id: str | None = Field(
        default=None,
        max_length=64,
        description="An anonymous cart to merge into the shopper's cart.",
    )


class UserOut(Out):
    id: int
    email: str
    name: str
    roles: list[str]
    language: str


class TokenOut(Out):
    token: str = Field(description="send it as 'Authorization: Bearer <token>'")
    user: UserOut
    cart_id: str | None = Field(
        default=None, description="the shopper's cart, when an anonymous cart was merged"
    )


class AcceptedOut(Out):
    detail: str


def user_json(user) -> dict:
    return {
        "id": user.pk,
        "email": user.email,
        "name": user.name,
        "roles": sorted(roles_of(user)),
        "language": user.preferred_language,
    }


@router.post(
    "/auth/register",
    response={201: UserOut, **problems(409)},
    summary="Register as a shopper",
)
def register(request, payload: RegisterIn):
    user = services.register_customer(
        email=payload.email,
        password=payload.password,
        name=payload.name,
        language=payload.language,
        client_ip=client_ip(request),
    )
    return 201, user_json(user)


def _logged_in(request, response: HttpResponse, user, cart_id: str | None) -> dict:
    """The token for ``user``, the device cookie for the client, and the anonymous cart merged."""
    devices.set_after_login(request, response, user.email)
    body = {"token": services.issue_token(user=user), "user": user_json(user)}
    if cart_id:
        body["cart_id"] = services.bring_guest_cart(user=user, cart_id=cart_id)
    return body


@router.post(
    "/auth/token",
    response={200: TokenOut, **problems(401, 403)},
    summary="Log in: exchange e-mail and password for a bearer token",
)
def token(request, response: HttpResponse, payload: TokenIn):
    """Failed logins are limited (429 ``rate_limited``); a client that logged in to the account
    before keeps its own allowance through the ``wh_device`` cookie this answer sets."""
    user = services.login(
        email=payload.email,
        password=payload.password,
        client_ip=client_ip(request),
        device=devices.from_request(request),
    )
    return 200, _logged_in(request, response, user, payload.cart_id)


@router.post(
    "/auth/login-link",
    response={202: AcceptedOut, **problems()},
    summary="Mail a one-time login link to an account's address",
)
def login_link(request, payload: LoginLinkIn):
    """202 whether or not an account exists; the mail goes only to a known, active account.
    Limited per e-mail and per client address (429 ``rate_limited``)."""
    login_links.request_link(email=payload.email, client_ip=client_ip(request))
    return 202, {
        "detail": "If an account exists for this address, a login link is on its way. "
        "It works once, for a few minutes."
    }


@router.post(
    "/auth/login-link/confirm",
    response={200: TokenOut, **problems(401, 403, 404)},
    summary="Log in with the key of a mailed login link",
)
def login_link_confirm(request, response: HttpResponse, payload: LoginLinkConfirmIn):
    user = login_links.confirm(key=payload.key, client_ip=client_ip(request))
    return 200, _logged_in(request, response, user, payload.cart_id)


@router.get(
    "/me",
    response={200: UserOut, **problems(auth=True)},
    summary="The caller, with roles",
    openapi_extra=AUTH,
)
def me(request):
    return 200, user_json(require_user(request))


__all__ = ["router", "caller"]
