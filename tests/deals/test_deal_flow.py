"""A flash deal through its services, on both waiting-room back ends: the contingent, the
pre-queue and paced admission, holds in carts that checkout honours until their deadline,
expiry handing units to the next person, household limits, sold out with a wait list, and
returned units offered to it in order."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Q

from tests.notifications.conftest import Clock
from warenhaus.core.errors import DomainError
from warenhaus.deals.waiting_room import waiting_room

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["db", "redis"])
def backend(request, settings):
    settings.WAITING_ROOM_BACKEND = request.param
    if request.param == "redis":
        from .conftest import REDIS_URL, redis_or_skip

        redis_or_skip()
        settings.REDIS_URL = REDIS_URL
        settings.WAITING_ROOM_PREFIX = f"wrflow-{uuid.uuid4().hex[:10]}"
    yield request.param
    if request.param == "redis":
        from warenhaus.deals.waiting_room import waiting_room

        room = waiting_room()
        for key in list(
            room.client.scan_iter(match=f"{settings.WAITING_ROOM_PREFIX}:*", count=1000)
        ):
            room.client.unlink(key)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


@pytest.fixture
def staff(make_user):
    return make_user(roles=["pricing"])


@pytest.fixture
def new_deal(make_product, staff, clock):
    from django.utils import timezone

    from warenhaus.deals import services

    def make(
        *, units=3, limit=1, starts_in=60, hold_minutes=10, pace=600, on_hand=50, price="119.99"
    ):
        variant = make_product(
            price=price, on_hand=on_hand, sku=f"DEAL-{uuid.uuid4().hex[:6]}"
        ).variants.get()
        start = timezone.now() + timedelta(seconds=starts_in)
        return services.create_deal(
            actor=staff,
            sku=variant.sku,
            deal_price="49.97",
            units=units,
            starts_at=start.isoformat(),
            ends_at=(start + timedelta(hours=1)).isoformat(),
            limit_per_customer=limit,
            hold_minutes=hold_minutes,
            admissions_per_minute=pace,
        )

    return make


ADDRESS = {
    "name": "Erika Mustermann",
    "street": "Heidestraße 17",
    "postal_code": "51147",
    "city": "Köln",
    "country": "DE",
}


def _checkout(cart_id, *, email, user=None, address=ADDRESS):
    from warenhaus.checkout import services as checkout

    return checkout.place_order(
        cart_id=cart_id, user=user, email=email, shipping_address=address, payment_method="invoice"
    )


def _deal(deal):
    from warenhaus.deals.models import Deal

    return Deal.objects.get(pk=deal.pk)


def test_making_a_deal_takes_its_contingent_from_stock(new_deal, make_product, staff):
    from warenhaus.deals import services
    from warenhaus.inventory.models import Stock

    deal = new_deal(units=5, on_hand=20)
    stock = Stock.objects.get(variant_id=deal.variant_id)
    assert (
        stock.allocated == 5
        and deal.regular_price == Decimal("119.99")
        and deal.lowest_price_30_days == Decimal("119.99")
    )
    json = services.deal_json(deal)
    assert (
        json["state"] == "scheduled"
        and json["units_left"] == 5
        and json["price"]["amount"] == "49.97"
    )
    with pytest.raises(DomainError) as err:
        services.create_deal(
            actor=staff,
            sku=deal.variant.sku,
            deal_price="200.00",
            units=1,
            starts_at=deal.starts_at,
            ends_at=deal.ends_at,
        )
    assert err.value.code == "deal_price_not_lower"
    with pytest.raises(DomainError) as err:
        services.create_deal(
            actor=staff,
            sku=deal.variant.sku,
            deal_price="9.99",
            units=16,
            starts_at=deal.starts_at,
            ends_at=deal.ends_at,
        )
    assert err.value.code == "out_of_stock"


def test_pre_queue_then_paced_admission_into_holds_at_the_deal_price(
    backend, new_deal, clock, make_user
):
    from warenhaus.checkout import services as checkout
    from warenhaus.deals import services
    from warenhaus.inventory.models import Stock

    deal = new_deal(units=3, starts_in=60)
    shoppers = [make_user(email=f"s{i}@example.de") for i in range(5)]
    tickets = [services.join_queue(deal_id=deal.pk, user=u) for u in shoppers]
    assert all(
        t["state"] == "waiting" and t["position"] is None and t["eta_seconds"] > 30 for t in tickets
    )
    again = services.join_queue(deal_id=deal.pk, user=shoppers[0])
    assert again["ticket"] == tickets[0]["ticket"]  # joining twice keeps one place
    clock.advance(61)
    states = [services.ticket_status(deal_id=deal.pk, ticket_id=t["ticket"]) for t in tickets]
    admitted = [s for s in states if s["state"] == "admitted"]
    waiting = [s for s in states if s["state"] == "waiting"]
    assert len(admitted) == 3 and len(waiting) == 2
    assert sorted(s["position"] for s in waiting) == [1, 2]
    d = _deal(deal)
    assert (d.sold, d.held) == (0, 3)
    # the held units are in each shopper's cart at the deal price, with the deadline
    s = admitted[0]
    user = next(u for u, t in zip(shoppers, tickets, strict=True) if t["ticket"] == s["ticket"])
    view = checkout.view_cart(checkout.get_cart(cart_id=s["cart_id"], user=user)).as_json()
    [line] = view["lines"]
    assert (
        line["unit_price"]["amount"] == "49.97"
        and line["hold"]["quantity"] == 1
        and view["problems"] == []
    )
    # checkout cannot fail for stock or price while the hold lasts: even a price change and an
    # empty shelf do not matter
    from warenhaus.catalog import services as catalog

    catalog.set_price(actor=None, sku=deal.variant.sku, amount="129.99")
    Stock.objects.filter(variant_id=deal.variant_id).update(on_hand=3)
    order = _checkout(s["cart_id"], email=user.email, user=user)
    assert order.total == Decimal("49.97") + Decimal("4.90") - Decimal(
        "0.00"
    ) or order.subtotal == Decimal("49.97")
    assert order.subtotal == Decimal("49.97")
    d = _deal(deal)
    assert (d.sold, d.held) == (1, 2)
    assert Stock.objects.get(variant_id=deal.variant_id).allocated == 3  # the deal's three, no more


def test_an_expired_hold_goes_to_the_next_in_line_and_the_cart_says_so(
    backend, new_deal, clock, make_user
):
    from warenhaus.checkout import services as checkout
    from warenhaus.deals import services
    from warenhaus.deals.models import Hold

    deal = new_deal(units=1, starts_in=0, hold_minutes=10)
    first, second = make_user(email="a@example.de"), make_user(email="b@example.de")
    t1 = services.join_queue(deal_id=deal.pk, user=first)
    t2 = services.join_queue(deal_id=deal.pk, user=second)
    assert t1["state"] == "admitted" and t2["state"] == "waiting" and t2["position"] == 1
    # not before its deadline (checked half a minute before, so a slow machine cannot pass it)
    clock.advance(10 * 60 - 30)
    services.sweep()
    assert services.ticket_status(deal_id=deal.pk, ticket_id=t1["ticket"])["state"] == "admitted"
    clock.advance(31)
    services.sweep()
    s1 = services.ticket_status(deal_id=deal.pk, ticket_id=t1["ticket"])
    s2 = services.ticket_status(deal_id=deal.pk, ticket_id=t2["ticket"])
    assert s1["state"] == "expired" and s2["state"] == "admitted"
    cart = checkout.get_cart(cart_id=s1["cart_id"], user=first)
    problems = checkout.view_cart(cart).as_json()["problems"]
    assert [p["code"] for p in problems] == ["hold_expired"]
    from django.utils import timezone

    deadline = timezone.localtime(
        Hold.objects.get(ticket=t1["ticket"]).expires_at
    )  # the shop's time, and it says which
    assert f"until {deadline:%H:%M %Z}" in problems[0]["message"] and deadline.tzname() in (
        "CET",
        "CEST",
    )
    with pytest.raises(DomainError) as err:
        _checkout(s1["cart_id"], email=first.email, user=first)
    assert err.value.code == "hold_expired"
    # told once: now it is a regular line at the regular price
    order = _checkout(s1["cart_id"], email=first.email, user=first)
    assert order.subtotal == Decimal("119.99")
    assert _deal(deal).held == 1


def test_the_sweep_announces_each_expired_hold_inside_its_transaction(new_deal, clock, make_user):
    from django.db import connection

    from warenhaus.deals import services
    from warenhaus.deals.events import hold_expired
    from warenhaus.deals.models import Hold, HoldStatus

    deal = new_deal(units=2, starts_in=0, hold_minutes=10)
    shopper = make_user(email="a@example.de")
    ticket = services.join_queue(deal_id=deal.pk, user=shopper, quantity=1)
    heard = []

    def receiver(**event):
        status = Hold.objects.get(pk=event["hold_id"]).status
        heard.append((event, status, len(connection.atomic_blocks)))

    hold_expired.connect(receiver, dispatch_uid="test.hold_expired")
    try:
        services.release_hold(hold_id=Hold.objects.get(ticket=ticket["ticket"]).pk)
        assert heard == []  # released by the shopper: not an expiry
        other = services.join_queue(
            deal_id=deal.pk, user=make_user(email="b@example.de"), quantity=1
        )
        hold = Hold.objects.get(ticket=other["ticket"])
        clock.advance(10 * 60 + 1)
        assert services.sweep()["expired"] == 1
    finally:
        hold_expired.disconnect(dispatch_uid="test.hold_expired")
    [(event, status, depth)] = heard
    assert {k: event[k] for k in ("hold_id", "deal_id", "cart_id", "quantity")} == {
        "hold_id": hold.pk,
        "deal_id": deal.pk,
        "cart_id": hold.cart_id,
        "quantity": 1,
    }
    # written, and inside the sweep's own transaction (deeper than the test's)
    assert status == HoldStatus.EXPIRED and depth > len(connection.atomic_blocks)


def test_the_household_limit_holds_across_accounts_at_one_address(backend, new_deal, make_user):
    from warenhaus.deals import services

    deal = new_deal(units=5, starts_in=0, limit=1)
    a, b = make_user(email="mann@example.de"), make_user(email="frau@example.de")
    ta, tb = (
        services.join_queue(deal_id=deal.pk, user=a),
        services.join_queue(deal_id=deal.pk, user=b),
    )
    _checkout(ta["cart_id"], email=a.email, user=a)
    other_spelling = {**ADDRESS, "street": "Heidestrasse 17".replace("ss", "ß").upper()}
    with pytest.raises(DomainError) as err:
        _checkout(tb["cart_id"], email=b.email, user=b, address=other_spelling)
    assert err.value.code == "limit_per_customer" and err.value.extra["reason"] == "address"
    # and the same person cannot queue again for more
    with pytest.raises(DomainError) as err:
        services.join_queue(deal_id=deal.pk, user=a)
    assert err.value.code == "limit_per_customer"


def test_the_household_limit_holds_across_accounts_paying_with_one_card(
    backend, new_deal, make_user
):
    """Two accounts, two addresses, one card: the second order is refused, saying why; the
    same accounts with another card each go through."""
    from warenhaus.checkout import services as checkout
    from warenhaus.deals import services

    deal = new_deal(units=5, starts_in=0, limit=1)
    a, b, c = (make_user(email=f"{n}@example.de") for n in ("karte-a", "karte-b", "karte-c"))
    ta, tb, tc = (services.join_queue(deal_id=deal.pk, user=u) for u in (a, b, c))
    elsewhere = {**ADDRESS, "street": "Gartenweg 3", "postal_code": "50667"}
    third = {**ADDRESS, "street": "Ringstraße 9", "postal_code": "10115", "city": "Berlin"}

    def pay(ticket, user, address, card):
        return checkout.place_order(
            cart_id=ticket["cart_id"],
            user=user,
            email=user.email,
            shipping_address=address,
            payment_method="test",
            payment_token=f"approve:{card}",
        )

    pay(ta, a, ADDRESS, "4242-0001")
    with pytest.raises(DomainError) as err:
        pay(tb, b, elsewhere, " 4242-0001")  # the same card
    assert err.value.code == "limit_per_customer" and err.value.extra["reason"] == "payment"
    assert _deal(deal).held == 2  # nothing half-written: b still holds the unit
    pay(tb, b, elsewhere, "5555-0002")
    pay(tc, c, third, "")  # no card named: no payment key, only customer and address count
    assert (_deal(deal).sold, _deal(deal).held) == (3, 0)


def test_held_lines_keep_their_quantity_and_removing_one_lets_the_next_in(
    backend, new_deal, make_user
):
    from warenhaus.checkout import services as checkout
    from warenhaus.deals import services

    deal = new_deal(units=1, starts_in=0)
    a, b = make_user(email="a@example.de"), make_user(email="b@example.de")
    ta = services.join_queue(deal_id=deal.pk, user=a)
    tb = services.join_queue(deal_id=deal.pk, user=b)
    with pytest.raises(DomainError) as err:
        checkout.set_quantity(cart_id=ta["cart_id"], user=a, sku=deal.variant.sku, quantity=2)
    assert err.value.code == "line_held"
    checkout.remove_line(cart_id=ta["cart_id"], user=a, sku=deal.variant.sku)
    assert services.ticket_status(deal_id=deal.pk, ticket_id=tb["ticket"])["state"] == "admitted"
    gone = services.ticket_status(deal_id=deal.pk, ticket_id=ta["ticket"])
    assert (gone["state"], gone["hold"]["status"]) == (
        "expired",
        "released",
    )  # one of API.md's four states; the hold says why
    assert waiting_room().get(deal.pk, ta["ticket"]).state == "left"


def test_sold_out_newcomers_get_a_wait_list_place_and_a_returned_unit_is_offered_in_order(
    backend, new_deal, make_user, support_user, clock
):
    from warenhaus.deals import services
    from warenhaus.deals.models import Hold, WaitlistEntry
    from warenhaus.notifications.models import OutboxMessage
    from warenhaus.orders import services as orders

    deal = new_deal(units=1, starts_in=0)
    buyer = make_user(email="kaeufer@example.de")
    t = services.join_queue(deal_id=deal.pk, user=buyer)
    order = _checkout(t["cart_id"], email=buyer.email, user=buyer)
    late = [
        services.join_queue(
            deal_id=deal.pk,
            guest=f"session:spaet{i}@example.de",
            email=f"spaet{i}@example.de",
            language="en" if i == 0 else "de",
        )
        for i in range(3)
    ]
    assert [x["state"] for x in late] == ["sold_out"] * 3
    assert [x["waitlist"]["position"] for x in late] == [1, 2, 3]
    orders.cancel(number=order.number, actor=support_user, reason="Kundenwunsch")
    offered = WaitlistEntry.objects.get(email="spaet0@example.de")
    assert offered.status == "offered"
    hold = Hold.objects.get(ticket=offered.token)
    assert hold.source == "waitlist" and hold.status == "active"
    mail = OutboxMessage.objects.get(kind="deal_offer")
    assert mail.to_email == "spaet0@example.de"
    from warenhaus.notifications.services import _render

    _, text, _ = _render(mail)  # in the language they joined in, and its link too
    assert "until" in text and f"/en/deals/offer/{offered.token}/" in text
    assert WaitlistEntry.objects.filter(status="waiting").count() == 2
    d = _deal(deal)
    assert (d.sold, d.held) == (0, 1)
    offer = services.waitlist_status(deal_id=deal.pk, token=offered.token)
    assert (offer["status"], offer["hold"]["status"], offer["cart_id"]) == (
        "offered",
        "active",
        hold.cart_id,
    )
    clock.advance(30 * 60 + 1)  # the offer's 30 minutes are over; the sweep has not ended it yet
    offer = services.waitlist_status(deal_id=deal.pk, token=offered.token)
    assert (offer["status"], offer["hold"]["status"]) == ("lapsed", "expired")


@pytest.fixture
def support_user(make_user):
    return make_user(roles=["support"])


def test_after_the_end_the_unsold_rest_goes_back_to_stock(backend, new_deal, clock):
    from warenhaus.deals import services
    from warenhaus.inventory.models import Stock

    deal = new_deal(units=4, starts_in=0)
    clock.advance(3601)
    assert services.sweep()["released"] == 4
    assert Stock.objects.get(variant_id=deal.variant_id).allocated == 0
    assert services.deal_json(_deal(deal))["state"] == "ended"
    with pytest.raises(DomainError) as err:
        services.join_queue(
            deal_id=deal.pk, guest="session:zu-spaet@example.de", email="zu-spaet@example.de"
        )
    assert err.value.code == "deal_ended"


def test_a_day_after_the_end_the_waiting_room_is_given_back(backend, new_deal, clock):
    """Redis keeps the waiting room in memory: the sweep removes it a day after the end (the
    embedded one keeps its rows for the record); each deal once."""
    from warenhaus.deals import services
    from warenhaus.deals.waiting_room import waiting_room

    deal = new_deal(units=4, starts_in=0)
    ticket = services.join_queue(
        deal_id=deal.pk, guest="session:frueh@example.de", email="frueh@example.de"
    )["ticket"]
    clock.advance(3601)
    assert services.sweep()["rooms_cleared"] == 0
    assert waiting_room().get(deal.pk, ticket) is not None
    clock.advance(24 * 3600)
    assert services.sweep()["rooms_cleared"] == 1
    assert services.sweep()["rooms_cleared"] == 0
    assert (waiting_room().get(deal.pk, ticket) is None) == (backend == "redis")
    assert _deal(deal).room_cleared_at is not None


def test_when_nothing_is_free_the_line_behind_the_held_units_goes_to_the_wait_list_in_order(
    backend, new_deal, make_user
):
    """No unit free: only held units can still come back. The people in line who could get one
    keep waiting; everyone behind them is told at once (sold out, a wait-list place), in the
    line's order, whoever polls first."""
    from warenhaus.deals import services
    from warenhaus.deals.models import WaitlistEntry

    deal = new_deal(units=2, starts_in=0, limit=2)
    holders = [
        services.join_queue(
            deal_id=deal.pk, guest=f"session:h{i}@example.de", email=f"h{i}@example.de"
        )
        for i in range(2)
    ]
    assert [t["state"] for t in holders] == ["admitted", "admitted"]
    line = [
        services.join_queue(
            deal_id=deal.pk,
            guest=f"session:w{i}@example.de",
            email=f"w{i}@example.de",
            quantity=1 if i else 2,
        )
        for i in range(6)
    ]
    # the first in line (wants 2) could get both held units back: keeps waiting; so does the
    # second (units before it: 2, not below the 2 held: no) -> only the first stays
    assert line[0]["state"] == "waiting" and line[0]["position"] == 1
    # first in line, but nothing is free: only a held unit given back lets them in, so they are
    # not asked to poll every second meanwhile
    assert services.POLL_AFTER_MAX <= line[0]["poll_after_seconds"] <= services.POLL_AFTER_MAX + 2
    # the second was moved out of the line; after it, newcomers go straight behind it
    assert all(t["state"] == "sold_out" and t["waitlist"]["status"] == "waiting" for t in line[1:])
    order = list(
        WaitlistEntry.objects.filter(deal=deal)
        .order_by("order_key", "id")
        .values_list("email", flat=True)
    )
    assert order == [
        f"w{i}@example.de" for i in range(1, 6)
    ]  # the line's order, not the polling order
    # a newcomer joins behind the line, not before it
    services.join_queue(deal_id=deal.pk, guest="session:new@example.de", email="new@example.de")
    assert (
        WaitlistEntry.objects.filter(deal=deal).order_by("-order_key", "-id").first().email
        == "new@example.de"
    )


def test_once_the_line_is_closed_newcomers_hear_sold_out_at_once_and_stay_behind_those_who_came_earlier(
    backend, new_deal, make_user
):
    """A newcomer after the line was closed to the wait list gets a definite answer in the
    join itself (no ticket to poll). Someone who came earlier and kept waiting in line for a
    held unit still comes before them on the wait list when those units are sold after all,
    and gets the first unit that comes back."""
    from warenhaus.deals import services
    from warenhaus.deals.models import WaitlistEntry
    from warenhaus.orders import services as orders
    from warenhaus.orders.models import Order

    deal = new_deal(units=2, starts_in=0, limit=2)
    holders = [
        services.join_queue(
            deal_id=deal.pk, guest=f"session:h{i}@example.de", email=f"h{i}@example.de"
        )
        for i in range(2)
    ]
    kept = services.join_queue(
        deal_id=deal.pk, guest="session:w0@example.de", email="w0@example.de", quantity=2
    )  # could get both held units back
    closed = services.join_queue(
        deal_id=deal.pk, guest="session:w1@example.de", email="w1@example.de"
    )
    assert kept["state"] == "waiting" and closed["state"] == "sold_out"
    late = services.join_queue(
        deal_id=deal.pk, guest="session:late@example.de", email="late@example.de"
    )
    assert (
        late["state"] == "sold_out" and late["ticket"] is None and late["waitlist"]["position"] == 2
    )
    assert waiting_room().counts(deal.pk)["waiting"] == 1  # nobody new in line
    # whoever still waits in line and joins again (a second click, a retry) keeps that place
    again = services.join_queue(
        deal_id=deal.pk, guest="session:w0@example.de", email="w0@example.de", quantity=2
    )
    assert (again["state"], again["ticket"], again["position"]) == ("waiting", kept["ticket"], 1)
    assert (
        services.join_queue(deal_id=deal.pk, guest="session:w1@example.de", email="w1@example.de")[
            "waitlist"
        ]["position"]
        == 1
    )  # and a closed one its wait-list place

    for i, h in enumerate(holders):  # the held units are bought: nothing can come back to the line
        _checkout(
            h["cart_id"],
            email=f"h{i}@example.de",
            address={**ADDRESS, "street": f"Heidestraße {i + 1}"},
        )
    status = services.ticket_status(deal_id=deal.pk, ticket_id=kept["ticket"])
    assert status["state"] == "sold_out" and status["waitlist"]["position"] == 1
    order = list(WaitlistEntry.objects.filter(deal=deal).values_list("email", flat=True))
    assert order == [
        "w0@example.de",
        "w1@example.de",
        "late@example.de",
    ]  # arrival, not when each got there
    assert (
        WaitlistEntry.objects.get(email="w0@example.de").pk
        > WaitlistEntry.objects.get(email="late@example.de").pk
    )

    orders.cancel(
        number=Order.objects.get(email="h1@example.de").number,
        actor=make_user(roles=["support"]),
        reason="Kundenwunsch",
    )
    assert dict(WaitlistEntry.objects.filter(deal=deal).values_list("email", "status")) == {
        "w0@example.de": "offered",
        "w1@example.de": "waiting",
        "late@example.de": "waiting",
    }


def test_someone_in_line_who_also_joins_the_wait_list_keeps_their_place_from_the_line(
    backend, new_deal
):
    from warenhaus.deals import services
    from warenhaus.deals.models import WaitlistEntry

    deal = new_deal(units=1, starts_in=0)
    holder = services.join_queue(
        deal_id=deal.pk, guest="session:a@example.de", email="a@example.de"
    )
    kept = services.join_queue(
        deal_id=deal.pk, guest="session:b@example.de", email="b@example.de"
    )  # could get the held unit back
    assert (
        services.join_queue(deal_id=deal.pk, guest="session:c@example.de", email="c@example.de")[
            "state"
        ]
        == "sold_out"
    )
    assert kept["state"] == "waiting"
    services.join_waitlist(
        deal_id=deal.pk, who="session:b@example.de", email="b@example.de"
    )  # b also joins the wait list, after c
    _checkout(holder["cart_id"], email="a@example.de")
    assert (
        services.ticket_status(deal_id=deal.pk, ticket_id=kept["ticket"])["waitlist"]["position"]
        == 1
    )
    assert list(WaitlistEntry.objects.filter(deal=deal).values_list("email", flat=True)) == [
        "b@example.de",
        "c@example.de",
    ]


def test_the_last_unit_goes_to_the_next_person_even_if_they_asked_for_two(
    backend, new_deal, make_user
):
    from warenhaus.deals import services
    from warenhaus.deals.models import Hold, WaitlistEntry

    deal = new_deal(units=3, starts_in=0, limit=2)
    a = services.join_queue(
        deal_id=deal.pk, guest="session:a@example.de", email="a@example.de", quantity=2
    )
    b = services.join_queue(
        deal_id=deal.pk, guest="session:b@example.de", email="b@example.de", quantity=2
    )
    assert a["hold"]["quantity"] == 2 and b["state"] == "admitted" and b["hold"]["quantity"] == 1
    assert (_deal(deal).held, _deal(deal).left) == (3, 0)
    # everything sold: the wait list; a returned single unit is offered to the first entry, who wanted 2
    _checkout(a["cart_id"], email="a@example.de")
    _checkout(b["cart_id"], email="b@example.de", address={**ADDRESS, "street": "Andere Straße 1"})
    c = services.join_queue(
        deal_id=deal.pk, guest="session:c@example.de", email="c@example.de", quantity=2
    )
    assert c["state"] == "sold_out" and c["waitlist"]["position"] == 1
    from warenhaus.orders import services as orders
    from warenhaus.orders.models import Order

    staff = make_user(roles=["support"])
    orders.cancel(
        number=Order.objects.get(email="b@example.de").number, actor=staff, reason="Kundenwunsch"
    )
    entry = WaitlistEntry.objects.get(email="c@example.de")
    assert entry.status == "offered" and Hold.objects.get(ticket=entry.token).quantity == 1
    assert (_deal(deal).sold, _deal(deal).held) == (2, 1)


def test_a_ticket_says_sold_out_only_once_its_wait_list_place_exists(
    backend, new_deal, monkeypatch
):
    """A poll between the two steps must never read "sold out" without a place."""
    from warenhaus.deals import services
    from warenhaus.deals.models import WaitlistEntry
    from warenhaus.deals.waiting_room import waiting_room

    room = waiting_room()
    seen = []
    original = type(room).update_many

    def update_many(self, deal_id, changes, *, state, only_from=None):
        if state == "sold_out":
            for ticket_id, _ in changes:
                who = self.get(deal_id, ticket_id).who
                seen.append(WaitlistEntry.objects.filter(deal_id=deal_id, who=who).exists())
        return original(self, deal_id, changes, state=state, only_from=only_from)

    monkeypatch.setattr(type(room), "update_many", update_many)
    deal = new_deal(units=1, starts_in=0)
    services.join_queue(
        deal_id=deal.pk, guest="session:a@example.de", email="a@example.de"
    )  # holds the unit
    services.join_queue(
        deal_id=deal.pk, guest="session:b@example.de", email="b@example.de"
    )  # could get it back: waits
    c = services.join_queue(
        deal_id=deal.pk, guest="session:c@example.de", email="c@example.de"
    )  # behind: sold out
    assert c["state"] == "sold_out" and c["waitlist"]["position"] == 1
    assert seen == [True]


def test_a_newcomer_never_gets_a_unit_before_the_people_on_the_wait_list(backend, new_deal):
    from warenhaus.deals import services
    from warenhaus.deals.models import Hold, WaitlistEntry

    deal = new_deal(units=1, starts_in=0)
    a = services.join_queue(deal_id=deal.pk, guest="session:a@example.de", email="a@example.de")
    services.join_queue(
        deal_id=deal.pk, guest="session:b@example.de", email="b@example.de"
    )  # waits for a's unit
    c = services.join_queue(
        deal_id=deal.pk, guest="session:c@example.de", email="c@example.de"
    )  # wait list
    assert c["state"] == "sold_out"
    # b gives up (admitted, then removes the line), a gives the unit back: the line is empty,
    # the wait list is offered it, and a newcomer joining now is behind c
    from warenhaus.checkout import services as checkout

    checkout.remove_line(cart_id=a["cart_id"], user=None, sku=deal.variant.sku)
    b = services.ticket_status(
        deal_id=deal.pk,
        ticket_id=services.join_queue(
            deal_id=deal.pk, guest="session:b@example.de", email="b@example.de"
        )["ticket"],
    )
    assert b["state"] == "admitted"
    d = services.join_queue(deal_id=deal.pk, guest="session:d@example.de", email="d@example.de")
    assert d["state"] == "sold_out" and d["waitlist"]["position"] == 2
    checkout.remove_line(cart_id=b["cart_id"], user=None, sku=deal.variant.sku)
    assert WaitlistEntry.objects.get(email="c@example.de").status == "offered"
    assert WaitlistEntry.objects.get(email="d@example.de").status == "waiting"
    assert not Hold.objects.filter(ticket=d.get("ticket") or "-").exists()


def test_with_the_workers_admitter_running_joins_and_polls_only_read_and_it_admits_in_one_batch(
    backend, new_deal, make_user
):
    """The rush's shape: the worker's admitter (a heartbeat in the waiting room) moves the
    line; a join is its ticket and a poll reads; one sweep lets the first in, in order, each
    into a cart of their own (a shopper's open cart, its regular line of the item becoming the
    held one)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from warenhaus.checkout import services as checkout
    from warenhaus.checkout.models import CartLine
    from warenhaus.deals import services

    deal = new_deal(units=3, starts_in=0)
    services.sweep(beat=True)
    shoppers = [make_user(email=f"r{i}@example.de") for i in range(5)]
    mine, _ = checkout.create_cart(user=shoppers[0])
    checkout.add_line(cart_id=mine.pk, user=shoppers[0], sku=deal.variant.sku, quantity=2)
    tickets = [services.join_queue(deal_id=deal.pk, user=u) for u in shoppers]
    assert [t["state"] for t in tickets] == ["waiting"] * 5 and [
        t["position"] for t in tickets
    ] == [1, 2, 3, 4, 5]
    with CaptureQueriesContext(connection) as polled:
        again = services.ticket_status(deal_id=deal.pk, ticket_id=tickets[4]["ticket"])
    assert (
        again["state"] == "waiting" and again["position"] == 5 and again["poll_after_seconds"] >= 1
    )
    assert len(polled) <= (2 if backend == "db" else 0), [
        q["sql"] for q in polled
    ]  # the ticket, those who joined since the snapshot
    assert _deal(deal).held == 0  # nobody was let in by a poll

    assert services.sweep(beat=True)["admitted"] == 3
    states = [services.ticket_status(deal_id=deal.pk, ticket_id=t["ticket"]) for t in tickets]
    assert [s["state"] for s in states] == ["admitted"] * 3 + ["waiting"] * 2
    assert [s["position"] for s in states[3:]] == [1, 2]  # could still get a returned unit
    assert states[0]["cart_id"] == mine.pk and len({s["cart_id"] for s in states[:3]}) == 3
    line = CartLine.objects.get(cart_id=mine.pk)
    assert (line.quantity, line.price_when_added, line.deal_hold_id is not None) == (
        1,
        Decimal("49.97"),
        True,
    )
    assert (_deal(deal).held, _deal(deal).sold) == (3, 0)


def test_the_admitter_puts_a_newcomer_who_slipped_into_the_line_behind_the_wait_list(
    backend, new_deal
):
    """Seen once in the replayed rush: a join read the deal as having free units a moment
    before the line was closed to the wait list, so its ticket waited in line while others
    already waited on the wait list. The admitter (one at a time) sends it behind them."""
    from django.utils import timezone

    from warenhaus.checkout import services as checkout
    from warenhaus.deals import services
    from warenhaus.deals.models import WaitlistEntry
    from warenhaus.deals.waiting_room import waiting_room

    deal = new_deal(units=1, starts_in=0)
    a = services.join_queue(
        deal_id=deal.pk, guest="session:a@example.de", email="a@example.de"
    )  # holds the unit
    b = services.join_queue(
        deal_id=deal.pk, guest="session:b@example.de", email="b@example.de"
    )  # waits for it
    c = services.join_queue(
        deal_id=deal.pk, guest="session:c@example.de", email="c@example.de"
    )  # the wait list
    assert (a["state"], b["state"], c["state"]) == ("admitted", "waiting", "sold_out")
    # d's join, as if it had read the deal before the line was closed
    d, _ = waiting_room().join(
        deal.pk,
        "email:d@example.de",
        1,
        before_start=False,
        now=timezone.now().timestamp() + 1,
        data={"email": "d@example.de", "language": "de"},
    )
    checkout.remove_line(
        cart_id=a["cart_id"], user=None, sku=deal.variant.sku
    )  # a's unit comes back
    b = services.ticket_status(deal_id=deal.pk, ticket_id=b["ticket"])
    assert b["state"] == "admitted"  # b was ahead of c
    d_now = services.ticket_status(deal_id=deal.pk, ticket_id=d.id)
    assert d_now["state"] == "sold_out" and d_now["waitlist"]["position"] == 2  # behind c
    checkout.remove_line(cart_id=b["cart_id"], user=None, sku=deal.variant.sku)
    services.sweep()
    assert [
        e.status for e in WaitlistEntry.objects.filter(deal=deal).order_by("order_key", "id")
    ] == ["offered", "waiting"]


def test_a_buyer_at_the_limit_who_joins_a_sold_out_deal_is_told_why_and_gets_no_wait_list_place(
    backend, new_deal, make_user
):
    """The household's usage is checked in the very statement that gives a sold-out newcomer a
    wait-list place: whoever has bought the limit is told so, and nobody is put on the list
    for a unit they could not buy."""
    from warenhaus.deals import services
    from warenhaus.deals.models import WaitlistEntry

    deal = new_deal(units=1, starts_in=0, limit=1)
    first = services.join_queue(
        deal_id=deal.pk, guest="session:kaeufer@example.de", email="kaeufer@example.de"
    )
    _checkout(first["cart_id"], email="kaeufer@example.de")
    assert (
        services.join_queue(
            deal_id=deal.pk, guest="session:andere@example.de", email="andere@example.de"
        )["waitlist"]["position"]
        == 1
    )
    with pytest.raises(DomainError) as err:
        services.join_queue(
            deal_id=deal.pk, guest="session:kaeufer@example.de", email="kaeufer@example.de"
        )
    assert (err.value.code, err.value.extra["reason"]) == ("limit_per_customer", "user")
    assert list(WaitlistEntry.objects.filter(deal=deal).values_list("email", flat=True)) == [
        "andere@example.de"
    ]


@pytest.mark.parametrize("rounds", [[4, 0, 3], [1, 5]])
def test_a_sold_out_newcomers_wait_list_place_counts_everyone_ahead_also_those_who_joined_elsewhere(
    backend, new_deal, rounds
):
    """The place a sold-out join answers is exact in the process that answers it: this
    process's snapshot of the wait list, plus the newcomers since then counted in the insert's
    own statement, also those another process put there (here: straight into the table) and
    those whose refused first try makes them come earlier than people already waiting."""
    from warenhaus.core.clock import now
    from warenhaus.deals import services
    from warenhaus.deals.models import WaitlistEntry
    from warenhaus.deals.waiting_room import order_key

    deal = new_deal(units=1, starts_in=0)
    services.join_queue(
        deal_id=deal.pk, guest="session:kaeufer@example.de", email="kaeufer@example.de"
    )
    n = 0
    for r, elsewhere in enumerate(rounds):
        for i in range(
            elsewhere
        ):  # another server's joins (every other one came earlier): this process's snapshot does not know them
            WaitlistEntry.objects.create(
                deal=deal,
                who=f"email:anders{r}-{i}@example.de",
                email=f"anders{r}-{i}@example.de",
                token=f"t{r}-{i}-{deal.pk}",
                created_at=now(),
                order_key=order_key(before_start=False, now=now().timestamp() - 3600 * (i % 2)),
            )
        for i in range(2):
            n += 1
            earlier = (
                None if i == 0 else now().timestamp() - 3600
            )  # a refused first try an hour ago: before everyone
            answer = services.join_queue(
                deal_id=deal.pk,
                guest=f"session:neu{n}@example.de",
                email=f"neu{n}@example.de",
                arrived=earlier,
            )
            me = WaitlistEntry.objects.get(deal=deal, email=f"neu{n}@example.de")
            ahead = (
                WaitlistEntry.objects.filter(deal=deal, status="waiting")
                .filter(Q(order_key__lt=me.order_key) | Q(order_key=me.order_key, id__lt=me.id))
                .count()
            )
            assert answer["state"] == "sold_out" and answer["waitlist"]["position"] == ahead + 1


def test_held_units_that_take_the_place_of_regular_ones_in_the_cart_are_said_plainly(
    backend, new_deal
):
    """A cart can have one line per item: when units are held in a cart that already has the
    item at the regular price, the held line takes its place, and the cart says so (a problem
    that informs and does not block the checkout); nothing disappears silently."""
    from warenhaus.checkout import services as checkout

    deal = new_deal(units=2, starts_in=0, limit=1)
    cart, _ = checkout.create_cart()
    checkout.add_line(cart_id=cart.id, sku=deal.variant.sku, quantity=3)
    t = services_join(
        deal, cart_id=cart.id, guest=f"session:cart:{cart.id}"
    )  # as the API joins with a cart
    assert t["state"] == "admitted" and t["cart_id"] == cart.id
    view = checkout.view_cart(checkout.get_cart(cart_id=cart.id)).as_json()
    [line] = view["lines"]
    assert line["quantity"] == 1 and line["unit_price"]["amount"] == "49.97"
    [told] = view["problems"]
    assert (told["code"], told["replaced_quantity"], told["quantity"]) == (
        "hold_replaced_line",
        3,
        1,
    )
    assert "3 x" in told["message"] and "replaced" in told["message"]
    order = _checkout(cart.id, email="erika@example.de")  # informs, does not block
    assert order.subtotal == Decimal("49.97")


def services_join(deal, **kw):
    from warenhaus.deals import services

    return services.join_queue(deal_id=deal.pk, **kw)


def test_held_units_brought_along_at_login_are_said_to_replace_the_regular_ones(
    backend, new_deal, make_user
):
    from warenhaus.checkout import services as checkout

    deal = new_deal(units=2, starts_in=0, limit=1)
    erika = make_user(email="erika@example.de")
    mine, _ = checkout.create_cart(user=erika)
    checkout.add_line(cart_id=mine.id, user=erika, sku=deal.variant.sku, quantity=2)
    anon, _ = checkout.create_cart()
    t = services_join(deal, cart_id=anon.id, guest=f"session:cart:{anon.id}")
    assert t["state"] == "admitted"
    merged = checkout.merge_into_user_cart(cart_id=anon.id, user=erika)
    view = checkout.view_cart(merged).as_json()
    assert [(ln["quantity"], ln["unit_price"]["amount"]) for ln in view["lines"]] == [(1, "49.97")]
    assert [(p["code"], p["replaced_quantity"]) for p in view["problems"]] == [
        ("hold_replaced_line", 2)
    ]
    # the other way round: regular units brought along give way to the held ones, and are named too
    later, _ = checkout.create_cart()
    checkout.add_line(cart_id=later.id, sku=deal.variant.sku, quantity=3)
    merged = checkout.merge_into_user_cart(cart_id=later.id, user=erika)
    view = checkout.view_cart(merged).as_json()
    assert [(ln["quantity"], ln["unit_price"]["amount"]) for ln in view["lines"]] == [(1, "49.97")]
    assert [(p["code"], p["replaced_quantity"]) for p in view["problems"]] == [
        ("hold_replaced_line", 5)
    ]


def test_once_someone_waits_on_the_wait_list_a_place_may_be_asked_for_even_with_units_free(
    backend, new_deal
):
    """The wait list refuses people while units are free only as long as nobody waits on it:
    once someone does, the line is closed already, and whoever it turned away (a ticket told
    "sold out" without an address) may ask for a place."""
    from warenhaus.core.clock import now
    from warenhaus.deals import services
    from warenhaus.deals.models import WaitlistEntry

    deal = new_deal(units=2, starts_in=0)
    with pytest.raises(DomainError) as err:
        services.join_waitlist(deal_id=deal.pk, who="session:a@example.de", email="a@example.de")
    assert err.value.code == "deal_not_sold_out"
    WaitlistEntry.objects.create(
        deal=deal,
        who="session:frueh@example.de",
        email="frueh@example.de",
        token=f"t-{deal.pk}",
        created_at=now(),
    )
    services.forget_everything()
    assert (
        services.join_waitlist(deal_id=deal.pk, who="session:a@example.de", email="a@example.de")[
            "position"
        ]
        == 2
    )


def test_at_login_units_of_a_hold_that_ended_add_up_with_the_regular_ones(
    backend, new_deal, make_user, clock
):
    from warenhaus.checkout import services as checkout
    from warenhaus.checkout.models import CartLine

    deal = new_deal(units=2, starts_in=0, limit=1, hold_minutes=5)
    erika = make_user(email="erika@example.de")
    mine, _ = checkout.create_cart(user=erika)
    checkout.add_line(cart_id=mine.id, user=erika, sku=deal.variant.sku, quantity=3)
    anon, _ = checkout.create_cart()
    assert (
        services_join(deal, cart_id=anon.id, guest=f"session:cart:{anon.id}")["state"] == "admitted"
    )
    clock.advance(5 * 60 + 1)  # the hold ran out before the login
    merged = checkout.merge_into_user_cart(cart_id=anon.id, user=erika)
    assert list(CartLine.objects.filter(cart=merged).values_list("quantity", flat=True)) == [
        4
    ]  # nothing lost
    # and a new hold into a cart whose line names an ended hold says what it replaced
    from warenhaus.deals import services
    from warenhaus.deals.models import Hold

    services.sweep()
    other = new_deal(units=1, starts_in=0, limit=1)
    CartLine.objects.filter(cart=merged).update(deal_hold_id=Hold.objects.get(deal=deal).pk)
    CartLine.objects.filter(cart=merged).update(variant_id=other.variant_id)
    assert (
        services.join_queue(deal_id=other.pk, user=erika, cart_id=merged.id)["state"] == "admitted"
    )
    told = [
        p
        for p in checkout.view_cart(checkout.get_cart(cart_id=merged.id, user=erika)).as_json()[
            "problems"
        ]
        if p["code"] == "hold_replaced_line"
    ]
    assert [p["replaced_quantity"] for p in told] == [4]
