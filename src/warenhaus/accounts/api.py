"""Accounts over the API: register, get a token, who am I."""

from __future__ import annotations

from ninja import Router, Schema
from pydantic import Field

from warenhaus.core.apiutil import caller, client_ip, require_user

from . import services
from .roles import roles_of

router = Router(tags=["accounts"])


class RegisterIn(Schema):
    email: str = Field(max_length=254)
    password: str = Field(max_length=200)
    name: str = Field(default="", max_length=150)
    language: str = Field(default="de", pattern="^(de|en)$")


class TokenIn(Schema):
    email: str = Field(max_length=254)
    password: str = Field(max_length=200)
    cart_id: str | None = Field(default=None, max_length=64, description="An anonymous cart to merge into the shopper's cart.")


def user_json(user) -> dict:
    return {"id": user.pk, "email": user.email, "name": user.name, "roles": sorted(roles_of(user)), "language": user.preferred_language}


@router.post("/auth/register", response={201: dict}, summary="Register as a shopper")
def register(request, payload: RegisterIn):
    user = services.register_customer(email=payload.email, password=payload.password, name=payload.name, language=payload.language)
    return 201, user_json(user)


@router.post("/auth/token", response={200: dict}, summary="Log in: exchange e-mail and password for a bearer token")
def token(request, payload: TokenIn):
    user = services.login(email=payload.email, password=payload.password, client_ip=client_ip(request))
    body = {"token": services.issue_token(user=user), "user": user_json(user)}
    if payload.cart_id:
        from warenhaus.checkout.services import merge_into_user_cart

        cart = merge_into_user_cart(cart_id=payload.cart_id, user=user)
        body["cart_id"] = cart.id if cart else None
    return 200, body


@router.get("/me", response={200: dict}, summary="The caller, with roles")
def me(request):
    return 200, user_json(require_user(request))


__all__ = ["router", "caller"]
