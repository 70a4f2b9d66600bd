"""Orders over the API: shoppers see their own; staff act according to their roles."""

from __future__ import annotations

from ninja import Schema
from pydantic import Field

from warenhaus.accounts.roles import can
from warenhaus.core.apiutil import AUTH, ApiRouter, Limit, paginate, require, require_user
from warenhaus.core.errors import NotFound
from warenhaus.core.schemas import OrderOut, Page, Reason, problems

from . import selectors, services
from .models import Order

router = ApiRouter(tags=["orders"])


class ReasonIn(Schema):
    reason: Reason


class CancelIn(Schema):
    reason: Reason = Field(description="Internal: goes into the order history and the audit trail.")
    customer_note: str = Field(
        default="", max_length=2000, description="Shown to the customer in the cancellation mail."
    )


class OptionalReasonIn(Schema):
    reason: str = Field(default="", max_length=2000)


@router.get(
    "/orders",
    response={200: Page[OrderOut], **problems(auth=True)},
    openapi_extra=AUTH,
    summary="The caller's orders (staff with orders.view_all: ?all=true for every order)",
)
def list_orders(
    request, limit: Limit = 20, cursor: str | None = None, all: bool = False, status: str = ""
):
    user = require_user(request)
    if all and can(user, "orders.view_all"):
        qs = Order.objects.all()
    else:
        qs = Order.objects.filter(user=user)
    if status:
        qs = qs.filter(status=status[:20])
    qs = qs.prefetch_related("lines")
    return 200, paginate(
        qs,
        limit=limit,
        cursor=cursor,
        descending=True,
        render=lambda o: selectors.order_json(o, with_history=False),
    )


@router.get(
    "/orders/{number}",
    response={200: OrderOut, **problems(404, auth=True)},
    openapi_extra=AUTH,
    summary="One order: status, lines, totals, history",
)
def get_order(request, number: str):
    user = require_user(request)
    order = selectors.order_by_number(number[:20])
    if order is None or (order.user_id != user.pk and not can(user, "orders.view_all")):
        raise NotFound(f"No order {number}.", code="order_not_found")
    return 200, selectors.order_json(order, for_staff=can(user, "orders.view_all"))


@router.post(
    "/orders/{number}/cancel",
    response={200: OrderOut, **problems(404, 409, auth=True)},
    openapi_extra=AUTH,
    summary="Cancel an order that has not shipped (role support)",
)
def cancel(request, number: str, payload: CancelIn):
    user = require(request, "orders.cancel")
    services.cancel(
        number=number, actor=user, reason=payload.reason, customer_note=payload.customer_note
    )
    return 200, selectors.order_json(selectors.order_by_number(number), for_staff=True)


@router.post(
    "/orders/{number}/hold",
    response={200: OrderOut, **problems(404, 409, auth=True)},
    openapi_extra=AUTH,
    summary="Hold an order before it ships (roles support, risk)",
)
def hold(request, number: str, payload: ReasonIn):
    user = require(request, "orders.hold")
    services.hold(number=number, actor=user, reason=payload.reason)
    return 200, selectors.order_json(selectors.order_by_number(number), for_staff=True)


@router.post(
    "/orders/{number}/release",
    response={200: OrderOut, **problems(404, 409, auth=True)},
    openapi_extra=AUTH,
    summary="Release a held order (roles support, risk)",
)
def release(request, number: str, payload: OptionalReasonIn):
    user = require(request, "orders.release")
    services.release(number=number, actor=user, reason=payload.reason)
    return 200, selectors.order_json(selectors.order_by_number(number), for_staff=True)


@router.post(
    "/orders/{number}/ship",
    response={200: OrderOut, **problems(404, 409, auth=True)},
    openapi_extra=AUTH,
    summary="Mark an order shipped (role support)",
)
def ship(request, number: str):
    user = require(request, "orders.ship")
    services.ship(number=number, actor=user)
    return 200, selectors.order_json(selectors.order_by_number(number), for_staff=True)


@router.post(
    "/orders/{number}/deliver",
    response={200: OrderOut, **problems(404, 409, auth=True)},
    openapi_extra=AUTH,
    summary="Mark an order delivered (role support)",
)
def deliver(request, number: str):
    user = require(request, "orders.ship")
    services.mark_delivered(number=number, actor=user)
    return 200, selectors.order_json(selectors.order_by_number(number), for_staff=True)
