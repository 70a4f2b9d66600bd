"""Flash deals over the API: staff make deals; shoppers read them, queue in the waiting room,
poll their ticket, and join the wait list."""

from __future__ import annotations

import re
from typing import Any

from ninja import Schema
from pydantic import Field

from warenhaus.core.apiutil import (
    AUTH,
    OPTIONAL_AUTH,
    ApiRouter,
    Limit,
    caller,
    paginate,
    require,
    whole_number,
)
from warenhaus.core.schemas import (
    MoneyOut,
    Out,
    Page,
    PositiveMoneyIn,
    Reason,
    UtcDateTime,
    problems,
)

from . import selectors, services
from .models import Deal
from .services import DEAL_BOUNDS

router = ApiRouter(tags=["deals"])

Units, PerCustomer, HoldMinutes, OfferMinutes, Pace = (
    whole_number(*DEAL_BOUNDS[f])
    for f in (
        "units",
        "limit_per_customer",
        "hold_minutes",
        "offer_minutes",
        "admissions_per_minute",
    )
)

DealQuantity = whole_number(1, 99)

_DEAL_ID = re.compile(r"[0-9]{1,18}")


class DealIn(Schema):
    sku: str = Field(max_length=64)
    deal_price: PositiveMoneyIn
    units: Units
    starts_at: UtcDateTime
    ends_at: UtcDateTime = Field(description="after starts_at")
    limit_per_customer: PerCustomer = 1
    hold_minutes: HoldMinutes = 10
    offer_minutes: OfferMinutes = Field(
        default=30, description="how long a wait-list offer of a returned unit lasts"
    )
    admissions_per_minute: Pace | None = Field(
        default=None,
        description="pacing: shoppers let in per minute (default DEAL_ADMISSIONS_PER_MINUTE)",
    )


class QueueIn(Schema):
    quantity: DealQuantity = 1
    email: str = Field(
        default="",
        max_length=254,
        description="without a token: where the wait list writes to you, and the household your limit counts; it does not identify you (send cart_id)",
    )
    cart_id: str = Field(
        default="",
        max_length=64,
        description="without a token: the cart you hold; the held units go into it, and it is your turn's identity (a second join with it answers from the same ticket). Without it each join is a new anonymous turn",
    )
    arrival: str = Field(
        default="",
        max_length=400,
        description="after a 429 `overloaded`: its `arrival`, to keep your place in line",
    )


class WaitlistIn(Schema):
    quantity: DealQuantity = 1
    email: str = Field(
        default="",
        max_length=254,
        description="where the offer goes (the account's address with a token)",
    )
    cart_id: str = Field(
        default="",
        max_length=64,
        description="without a token: the cart you hold, your place's identity (as for the queue)",
    )


class ReasonIn(Schema):
    reason: Reason


class DealOut(Out):
    id: int
    sku: str
    title: str
    price: MoneyOut = Field(description="the deal price")
    regular_price: MoneyOut
    lowest_price_30_days: MoneyOut
    units: int
    units_left: int
    sold: int
    held: int
    state: str = Field(examples=["scheduled", "live", "sold_out", "ended", "cancelled"])
    starts_at: str
    ends_at: str
    starts_in_seconds: int
    limit_per_customer: int
    hold_minutes: int


class TicketHoldOut(Out):
    quantity: int
    expires_at: str
    status: str


class WaitlistOut(Out):
    entry: str = Field(description="the place's token (GET /deals/{id}/waitlist/{entry})")
    status: str
    position: int | None = None
    quantity: int


class TicketOut(Out):
    ticket: str | None = Field(description="null when the deal was sold out before a ticket")
    deal: int | None = None
    state: str = Field(description="waiting | admitted | sold_out | expired")
    position: int | None
    eta_seconds: int | None
    cart_id: str | None
    hold: TicketHoldOut | None
    waitlist: WaitlistOut | None


class DashboardOut(Out):
    deal: DealOut
    queue: dict[str, int]
    queue_length: int
    admitted: int
    held: int
    sold: int
    left: int
    waitlist: dict[str, int]
    admission_rate_per_minute: float
    pace_per_minute: float
    series: list[dict[str, Any]]


def _who(request, email: str, cart_id: str):
    """The caller as the waiting room knows them: the account (token), else the anonymous cart
    they hold (its id is its capability), else nobody yet (a new anonymous turn). The e-mail
    address is only where to write: whoever types one gets no one else's ticket, cart or hold."""
    from warenhaus.accounts.services import normalise_email

    user = caller(request)
    mail = normalise_email(email) if email else ""
    if user is None and cart_id:
        from warenhaus.checkout.services import get_cart

        get_cart(
            cart_id=cart_id
        )  # an anonymous cart the caller holds (else 404, as for the cart itself)
        return None, mail, f"cart:{cart_id}"
    return user, mail, ""


@router.post(
    "/deals",
    response={201: DealOut, **problems(404, 409, auth=True)},
    openapi_extra=AUTH,
    summary="Make a flash deal (its units are taken from stock at once)",
)
def create(request, payload: DealIn):
    user = require(request, "deals.manage")
    fields = payload.model_dump()
    deal = services.create_deal(actor=user, **{**fields, "deal_price": payload.deal_price.amount})
    return 201, services.deal_json(services.get_deal(deal.pk))


@router.get(
    "/deals",
    response={200: Page[DealOut], **problems()},
    summary="Deals that are coming or running, soonest first",
)
def list_deals(request, limit: Limit = 20, cursor: str | None = None, all: bool = False):
    qs = Deal.objects.select_related("variant__product")
    if not all:
        qs = selectors.current(qs)
    return 200, paginate(qs, limit=limit, cursor=cursor, render=services.deal_json)


@router.get(
    "/deals/{deal_id}",
    response={200: DealOut, **problems(404)},
    summary="A deal: price, regular price, lowest price of the last 30 days, units left, state",
)
def get(request, deal_id: str):
    return 200, services.deal_json(services.get_deal(deal_id))


@router.post(
    "/deals/{deal_id}/queue",
    response={201: TicketOut, **problems(401, 403, 404, 409)},
    openapi_extra=OPTIONAL_AUTH,
    summary="Join the deal's waiting room (before the start: the pre-queue, shuffled fairly at the start)",
)
def join(request, deal_id: str, payload: QueueIn):
    from .limiter import arrival_from, arrived_at

    user, email, guest = _who(request, payload.email, payload.cart_id)
    # the place in line counts from when the join reached the server (not when a thread got to
    # it), or from a refused earlier attempt's arrival that the caller sends back
    arrived = (
        arrival_from(request, int(deal_id), payload.arrival)
        if payload.arrival and _DEAL_ID.fullmatch(deal_id)
        else None
    ) or arrived_at(request)
    return 201, services.join_queue(
        deal_id=deal_id,
        user=user,
        guest=guest,
        email=email,
        quantity=payload.quantity,
        cart_id=payload.cart_id,
        language=getattr(request, "LANGUAGE_CODE", "de"),
        arrived=arrived,
    )


@router.get(
    "/deals/{deal_id}/queue/{ticket}",
    response={200: TicketOut, **problems(404)},
    summary="Poll a ticket: waiting (position, eta), admitted (cart and hold), sold_out, expired",
)
def ticket(request, deal_id: str, ticket: str):
    return 200, services.ticket_status(deal_id=deal_id, ticket_id=ticket)


@router.post(
    "/deals/{deal_id}/waitlist",
    response={201: WaitlistOut, **problems(401, 403, 404, 409)},
    openapi_extra=OPTIONAL_AUTH,
    summary="Join the wait list: returned units are offered in order, at the deal price, for a limited time",
)
def waitlist(request, deal_id: str, payload: WaitlistIn):
    user, email, guest = _who(request, payload.email, payload.cart_id)
    if user is not None:
        email = user.email
    if not email:
        from warenhaus.core.errors import ValidationFailed

        raise ValidationFailed(
            "The wait list needs an e-mail address to tell you when a unit is free.",
            code="email_required",
        )
    who = services.customer_key(user=user, guest=guest, email=email)
    return 201, services.join_waitlist(
        deal_id=deal_id,
        who=who,
        email=email,
        quantity=payload.quantity,
        language=getattr(request, "LANGUAGE_CODE", "de"),
    )


@router.get(
    "/deals/{deal_id}/waitlist/{entry}",
    response={200: WaitlistOut, **problems(404)},
    summary="A wait-list place: position, or the offer",
)
def waitlist_entry(request, deal_id: str, entry: str):
    return 200, services.waitlist_status(deal_id=deal_id, token=entry)


@router.get(
    "/deals/{deal_id}/dashboard",
    response={200: DashboardOut, **problems(404, auth=True)},
    openapi_extra=AUTH,
    summary="Staff: queue, admitted, held, sold, wait list, admission rate, over time",
)
def dashboard(request, deal_id: str):
    require(request, "deals.view")
    return 200, selectors.dashboard(services.get_deal(deal_id))


@router.post(
    "/deals/{deal_id}/cancel",
    response={200: DealOut, **problems(404, 409, auth=True)},
    openapi_extra=AUTH,
    summary="Staff: stop a deal (holds are honoured until their deadline; the rest goes back to stock)",
)
def cancel(request, deal_id: str, payload: ReasonIn):
    user = require(request, "deals.manage")
    return 200, services.deal_json(
        services.cancel_deal(deal_id=deal_id, actor=user, reason=payload.reason)
    )
