"""Carts and checkout over the API. Anonymous shoppers use carts by their unguessable id; a
shopper's cart needs the shopper's token."""

from __future__ import annotations

from django.conf import settings
from ninja import Header, Schema
from pydantic import Field

from warenhaus.accounts.roles import can
from warenhaus.core.apiutil import OPTIONAL_AUTH, ApiRouter, caller, client_ip, whole_number
from warenhaus.core.idempotency import PENDING, run_idempotent, validate_key
from warenhaus.core.schemas import MoneyOut, OrderOut, Out, Totals, problems
from warenhaus.orders.models import OrderStatus
from warenhaus.orders.selectors import order_json

from . import services

router = ApiRouter(tags=["carts and checkout"])

Quantity = whole_number(1, settings.MAX_LINE_QUANTITY, code="invalid_quantity")


class LineIn(Schema):
    sku: str = Field(max_length=64)
    quantity: Quantity = 1


class QuantityIn(Schema):
    quantity: Quantity


class AddressIn(Schema):
    name: str = Field(max_length=200)
    street: str = Field(max_length=200)
    postal_code: str = Field(max_length=20)
    city: str = Field(max_length=200)
    country: str = Field(default="DE", max_length=2)


class CheckoutIn(Schema):
    email: str = Field(max_length=254)
    shipping_address: AddressIn
    payment_method: str = Field(description='"invoice" or "test" (card simulator)', max_length=20)
    payment_token: str = Field(
        default="",
        max_length=100,
        description='For "test": approve, decline or timeout, optionally with the simulated card: "approve:4242-0001" (its fingerprint counts for flash-deal household limits).',
    )
    shipping_method: str | None = Field(
        default=None, max_length=20, description='"standard" or "express"'
    )
    channel: str = Field(
        default="api",
        max_length=10,
        description='"api", or "phone" for staff (orders.place_phone) ordering for the customer named by email',
    )


class VoucherIn(Schema):
    code: str = Field(max_length=64)
    channel: str = Field(
        default="api", max_length=10, description='"api", or "phone" for staff taking a phone order'
    )


class HoldOut(Out):
    quantity: int
    expires_at: str = Field(description="ISO 8601 with offset")


class CartLineOut(Out):
    sku: str
    title: str
    product_slug: str
    quantity: int
    unit_price: MoneyOut
    line_total: MoneyOut
    vat_rate: str
    available: int
    hold: HoldOut | None = Field(description="units held for the shopper at a deal price")


class CartVoucherOut(Out):
    id: str = Field(description="the voucher's id in this cart (DELETE takes it, or the code)")
    code_hint: str
    campaign: str
    applies: bool
    discount: MoneyOut
    problem: str | None = Field(description="the code of the reason it does not apply")


class CartProblemOut(Out):
    """Something the shopper must see (a line no longer available, a changed price, ...);
    fields beyond ``code`` and ``message`` depend on the code."""

    code: str = Field(examples=["insufficient_stock"])
    message: str


class CartOut(Out):
    id: str
    status: str
    lines: list[CartLineOut]
    vouchers: list[CartVoucherOut]
    shipping_method: str | None
    totals: Totals
    problems: list[CartProblemOut]


def _channel(request, wanted: str) -> str:
    """``phone`` only for staff who take phone orders; anything else over the API is ``api``."""
    return "phone" if wanted == "phone" and can(caller(request), "orders.place_phone") else "api"


class ShippingIn(Schema):
    shipping_method: str = Field(max_length=20)


def _cart_json(request, cart_id: str) -> dict:
    cart = services.get_cart(cart_id=cart_id, user=caller(request))
    return services.view_cart(cart).as_json()


@router.post(
    "/carts",
    response={200: CartOut, 201: CartOut, **problems(401)},
    openapi_extra=OPTIONAL_AUTH,
    summary="Create a cart (with a token: the shopper's open cart)",
)
def create_cart(request):
    cart, created = services.create_cart(user=caller(request))
    return (201 if created else 200), (
        services.empty_view(cart) if created else services.view_cart(cart)
    ).as_json()


@router.get(
    "/carts/{cart_id}",
    response={200: CartOut, **problems(401, 403, 404)},
    summary="A cart with lines, totals and problems",
    openapi_extra=OPTIONAL_AUTH,
)
def get_cart(request, cart_id: str):
    return 200, _cart_json(request, cart_id)


@router.post(
    "/carts/{cart_id}/lines",
    response={200: CartOut, **problems(401, 403, 404, 409)},
    summary="Add an item (quantities add up)",
    openapi_extra=OPTIONAL_AUTH,
)
def add_line(request, cart_id: str, payload: LineIn):
    cart = services.add_line(
        cart_id=cart_id, user=caller(request), sku=payload.sku, quantity=payload.quantity
    )
    return 200, services.view_cart(cart).as_json()


@router.patch(
    "/carts/{cart_id}/lines/{sku}",
    response={200: CartOut, **problems(401, 403, 404, 409)},
    summary="Change a line's quantity",
    openapi_extra=OPTIONAL_AUTH,
)
def patch_line(request, cart_id: str, sku: str, payload: QuantityIn):
    services.set_quantity(cart_id=cart_id, user=caller(request), sku=sku, quantity=payload.quantity)
    return 200, _cart_json(request, cart_id)


@router.delete(
    "/carts/{cart_id}/lines/{sku}",
    response={200: CartOut, **problems(401, 403, 404, 409)},
    summary="Remove a line",
    openapi_extra=OPTIONAL_AUTH,
)
def delete_line(request, cart_id: str, sku: str):
    services.remove_line(cart_id=cart_id, user=caller(request), sku=sku)
    return 200, _cart_json(request, cart_id)


@router.put(
    "/carts/{cart_id}/shipping",
    response={200: CartOut, **problems(401, 403, 404, 409)},
    summary="Choose the shipping method",
    openapi_extra=OPTIONAL_AUTH,
)
def put_shipping(request, cart_id: str, payload: ShippingIn):
    services.set_shipping_method(
        cart_id=cart_id, user=caller(request), code=payload.shipping_method
    )
    return 200, _cart_json(request, cart_id)


@router.post(
    "/carts/{cart_id}/vouchers",
    response={200: CartOut, **problems(401, 403, 404, 409)},
    openapi_extra=OPTIONAL_AUTH,
    summary="Apply a voucher code (or a problem with the reason it does not apply)",
)
def apply_voucher(request, cart_id: str, payload: VoucherIn):
    from . import vouchers

    view = vouchers.apply_voucher(
        cart_id=cart_id,
        user=caller(request),
        code=payload.code,
        channel=_channel(request, payload.channel),
        client_ip=client_ip(request),
    )
    return 200, view.as_json()


@router.delete(
    "/carts/{cart_id}/vouchers/{code}",
    response={200: CartOut, **problems(401, 403, 404, 409)},
    openapi_extra=OPTIONAL_AUTH,
    summary="Remove a voucher (by its code or its id in the cart)",
)
def remove_voucher(request, cart_id: str, code: str):
    from . import vouchers

    vouchers.remove_voucher(cart_id=cart_id, user=caller(request), code=code)
    return 200, _cart_json(request, cart_id)


@router.post(
    "/carts/{cart_id}/checkout",
    response={201: OrderOut, **problems(401, 402, 403, 404, 409)},
    openapi_extra=OPTIONAL_AUTH,
    summary="Place the order (needs an Idempotency-Key header)",
)
def checkout(
    request,
    cart_id: str,
    payload: CheckoutIn,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
):
    user = caller(request)
    key = validate_key(idempotency_key)

    number = services.new_order_number()
    marker = services.pending_marker(number)

    def work():
        # The reservation commits with the key's record; the card is asked after that commit.
        order = services.reserve_order(
            number=number,
            cart_id=cart_id,
            user=user,
            email=payload.email,
            shipping_address=payload.shipping_address.model_dump(),
            payment_method=payload.payment_method,
            payment_token=payload.payment_token,
            shipping_method=payload.shipping_method,
            channel="phone" if payload.channel == "phone" else "api",
            language=getattr(request, "LANGUAGE_CODE", "de") or "de",
            client_ip=client_ip(request),
        )
        if order.status == OrderStatus.AUTHORIZING:
            return PENDING, marker
        return 201, order_json(order)

    def then(marker, answer):
        order = services.authorise_pending(
            marker,
            payment_token=payload.payment_token,
            on_confirm=lambda order: answer(201, order_json(order)),
        )
        return 201, order_json(order)

    # Keys are per cart and caller: someone probing another person's cart cannot plant an
    # answer under a key the owner will use.
    scope = f"checkout:{cart_id}:{user.pk if user else '-'}"
    return run_idempotent(
        scope=scope, key=key, payload=payload.model_dump(), work=work, then=then, pending=marker
    )
