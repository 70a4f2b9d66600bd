"""A household's limit on a flash deal holds under real concurrency on PostgreSQL: checkouts of
one household (one account, one e-mail address, one shipping address, one card) racing at once,
and admitters, wait-list offers and checkouts of one household racing each other. The household
buys at most ``limit_per_customer`` units, counted on every key of a purchase
(``HouseholdUsage``, held by the check ``household_within_limit``); every other checkout of it
is refused with 409 ``limit_per_customer`` naming the shared key, never a server error. One
account racing to join has one turn, so it holds at most the limit."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from django.db.models import Sum

from tests.concurrency.support import run_together
from warenhaus.core.errors import DomainError

try:
    from tests.conftest import requires_postgres
except ImportError:
    from conftest import requires_postgres

pytestmark = [
    pytest.mark.postgres,
    requires_postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("pg-concurrency"),
]

LIMIT = 2
SHOPPERS = 8

ADDRESS = {
    "name": "Erika Mustermann",
    "street": "Heidestraße 17",
    "postal_code": "51147",
    "city": "Köln",
    "country": "DE",
}
#: one household's address as different people type it (one key: see deals.services.address_key)
SPELLINGS = ("Heidestraße 17", "HEIDESTRASSE 17", "Heidestr. 17", "heide-strasse 17")


def _live_deal(make_product, *, units: int):
    from django.utils import timezone

    from warenhaus.deals import services

    variant = make_product(
        price="119.99", on_hand=units + 10, sku=f"HH-{uuid.uuid4().hex[:6]}"
    ).variants.get()
    start = timezone.now() - timedelta(seconds=1)
    return services.create_deal(
        actor=None,
        sku=variant.sku,
        deal_price="49.97",
        units=units,
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        limit_per_customer=LIMIT,
        admissions_per_minute=100_000,
    )


def _elsewhere(i: int) -> dict:
    """An address of its own for shopper ``i`` (a household of its own)."""
    return {**ADDRESS, "street": f"Gartenweg {i + 1}", "postal_code": f"5{i:04d}"}


def _admit_batch():
    """The admitter's batch without the waiting room's lease (as if it had run out mid-batch),
    wherever the deals package keeps it."""
    try:
        from warenhaus.deals.services.admission import admit_batch
    except ImportError:
        from warenhaus.deals.services import _admit_batch as admit_batch
    return admit_batch


def _outcome(fn) -> tuple:
    """``("ordered", number)``, or ``("refused", code, reason)`` for a domain refusal; anything
    else (an IntegrityError, a deadlock) propagates and is reported by ``run_together``."""
    try:
        return ("ordered", fn().number)
    except DomainError as err:
        return ("refused", err.code, err.extra.get("reason"))


def _assert_no_exceptions(results) -> None:
    failed = [r for r in results if isinstance(r, tuple) and r and r[0] == "exception"]
    assert not failed, failed[0][2]


def _sold_and_held(deal):
    from warenhaus.deals.models import Deal, Hold, HoldStatus, Sale

    d = Deal.objects.get(pk=deal.pk)
    held = (
        Hold.objects.filter(deal=deal, status=HoldStatus.ACTIVE).aggregate(n=Sum("quantity"))["n"]
        or 0
    )
    sold = (
        Sale.objects.filter(deal=deal, returned_at__isnull=True).aggregate(n=Sum("quantity"))["n"]
        or 0
    )
    assert (d.sold, d.held) == (sold, held)  # the counters agree with the rows
    return sold, held


def _nothing_more_for(deal, turns: list[str]) -> bool:
    """No unit is free and none of ``turns`` holds one: no hold can come to them any more (no
    unit is given back in this race)."""
    from warenhaus.deals.models import Deal, Hold, HoldStatus

    return (
        Deal.objects.get(pk=deal.pk).left == 0
        and not Hold.objects.filter(deal=deal, ticket__in=turns, status=HoldStatus.ACTIVE).exists()
    )


def _household(kind: str, i: int, *, tag: str, account=None) -> dict:
    """How shopper ``i`` of the household ``kind`` queues and checks out: each has a turn of
    their own (a guest's session) and shares exactly one key with the others."""
    own_email = f"{kind}-{i}-{tag}@example.de"
    shared_email = f"familie-{tag}@example.de"
    out = {
        "guest": f"session:{kind}-{i}-{tag}",
        "join_email": own_email,
        "email": own_email,
        "user": None,
        "address": _elsewhere(i),
        "payment_method": "invoice",
        "payment_token": "",
    }
    if kind == "user":  # one account checks out the carts its guest sessions got
        out.update(user=account, email=account.email)
    elif kind == "email":  # guests who give one e-mail address
        out.update(join_email=shared_email, email=shared_email)
    elif kind == "address":  # different people, one front door
        out.update(address={**ADDRESS, "street": SPELLINGS[i % len(SPELLINGS)]})
    elif kind == "payment":  # different people, one card
        out.update(payment_method="test", payment_token=f"approve: 4242-{tag}")
    return out


def _shared_keys(deal) -> set[str]:
    """The household keys every sale of the deal was counted on."""
    from warenhaus.deals.models import Sale

    keys = [set(k) for k in Sale.objects.filter(deal=deal).values_list("keys", flat=True)]
    return set.intersection(*keys) if keys else set()


@pytest.mark.parametrize("kind", ["user", "email", "address", "payment"])
def test_racing_checkouts_of_one_household_buy_no_more_than_its_limit(
    make_product, make_user, kind
):
    """Eight shoppers of one household each hold a unit; all check out at the same instant.
    Exactly the limit is sold, the others are refused saying which key is spent, and they
    keep their holds (nothing half-written)."""
    from warenhaus.checkout import services as checkout
    from warenhaus.deals import services
    from warenhaus.deals.models import HouseholdUsage

    deal = _live_deal(make_product, units=SHOPPERS + 4)
    tag = uuid.uuid4().hex[:8]
    account = make_user(email=f"konto-{tag}@example.de") if kind == "user" else None
    shoppers = [_household(kind, i, tag=tag, account=account) for i in range(SHOPPERS)]
    carts = []
    for s in shoppers:
        turn = services.join_queue(deal_id=deal.pk, guest=s["guest"], email=s["join_email"])
        assert turn["state"] == "admitted" and turn["hold"]["quantity"] == 1, turn
        carts.append(turn["cart_id"])

    def buy(i):
        s = shoppers[i]
        return _outcome(
            lambda: checkout.place_order(
                cart_id=carts[i],
                user=s["user"],
                email=s["email"],
                shipping_address=s["address"],
                payment_method=s["payment_method"],
                payment_token=s["payment_token"],
            )
        )

    results = run_together(SHOPPERS, buy)
    _assert_no_exceptions(results)
    ordered = [r for r in results if r[0] == "ordered"]
    refused = [r for r in results if r[0] == "refused"]
    assert len(ordered) == LIMIT, results
    assert refused == [("refused", "limit_per_customer", kind)] * (SHOPPERS - LIMIT), results
    (shared,) = _shared_keys(deal)  # the one key the household has in common
    assert shared.startswith(f"{kind}:")
    usage = HouseholdUsage.objects.get(deal=deal, key=shared)
    assert (usage.units, usage.max_units) == (LIMIT, LIMIT)
    assert not HouseholdUsage.objects.filter(deal=deal, units__gt=LIMIT).exists()
    assert _sold_and_held(deal) == (LIMIT, SHOPPERS - LIMIT)


def test_admitters_offers_and_checkouts_racing_for_one_household_sell_it_no_more_than_its_limit(
    make_product,
):
    """Guests of one e-mail address fill the line and the wait list. Admitters that ignore the
    waiting room's lease, wait-list offers and the household's checkouts all run at once: each
    buyer checks out every hold of theirs as soon as it appears. The household buys exactly its
    limit; every other checkout of it is refused with ``limit_per_customer`` (``email``)."""
    from django.utils import timezone

    from warenhaus.checkout import services as checkout
    from warenhaus.deals import services
    from warenhaus.deals.models import Deal, Hold, HoldStatus, HouseholdUsage, WaitlistEntry
    from warenhaus.deals.waiting_room import order_key, waiting_room

    in_line, waiting, admitters, offerers, buyers = 10, 6, 3, 2, 7
    deal = _live_deal(make_product, units=12)
    tag = uuid.uuid4().hex[:8]
    email = f"familie-{tag}@example.de"
    room = waiting_room()
    joined = time.time()
    turns = [
        room.join(
            deal.pk,
            f"session:line-{i}-{tag}",
            1,
            before_start=False,
            now=joined + i / 1000,
            data={"email": email, "language": "de"},
        )[0].id
        for i in range(in_line)
    ]
    for i in range(waiting):  # behind everyone in line, so the line is not closed to them
        entry = WaitlistEntry.objects.create(
            deal=deal,
            who=f"session:wait-{i}-{tag}",
            email=email,
            quantity=1,
            token=uuid.uuid4().hex,
            created_at=timezone.now(),
            order_key=order_key(before_start=False, now=joined + 1 + i / 1000),
        )
        turns.append(entry.token)
    deadline = time.monotonic() + 20

    def buy(b):
        mine = turns[b::buyers]
        outcomes = []
        while mine and time.monotonic() < deadline:
            for hold in Hold.objects.filter(
                deal=deal, ticket__in=mine, status=HoldStatus.ACTIVE
            ).order_by("pk"):
                mine.remove(hold.ticket)
                outcomes.append(
                    _outcome(
                        lambda hold=hold: checkout.place_order(
                            cart_id=hold.cart_id,
                            user=None,
                            email=email,
                            shipping_address=_elsewhere(hold.pk),
                            payment_method="invoice",
                        )
                    )
                )
            if mine and _nothing_more_for(deal, mine):
                break
            time.sleep(0.02)
        return ("buy", outcomes)

    def racer(i):
        at = timezone.now()
        if i < admitters:  # no lease: only the database keeps them apart
            return ("admit", _admit_batch()(deal.pk, at=at))
        if i < admitters + offerers:
            return ("offer", services.offer_to_waitlist(Deal.objects.get(pk=deal.pk), at=at))
        return buy(i - admitters - offerers)

    results = run_together(admitters + offerers + buyers, racer)
    _assert_no_exceptions(results)
    outcomes = [o for r in results if r[0] == "buy" for o in r[1]]
    ordered = [o for o in outcomes if o[0] == "ordered"]
    refused = [o for o in outcomes if o[0] == "refused"]
    given = Hold.objects.filter(deal=deal).count()
    assert given > LIMIT  # the household held more than it may buy: the checkouts decided
    assert len(ordered) == LIMIT, outcomes
    assert refused == [("refused", "limit_per_customer", "email")] * (given - LIMIT), outcomes
    usage = HouseholdUsage.objects.get(deal=deal, key=f"email:{email}")
    assert (usage.units, usage.max_units) == (LIMIT, LIMIT)
    sold, held = _sold_and_held(deal)
    assert (sold, held) == (LIMIT, given - LIMIT)
    d = Deal.objects.get(pk=deal.pk)
    assert d.sold + d.held + d.released_units <= d.units


def test_one_account_racing_to_join_gets_one_turn_and_holds_no_more_than_its_limit(
    make_product, make_user
):
    """The same account joins from eight tabs at once, asking for one or two units: one ticket,
    one hold of at most the limit, and every tab is answered with that ticket."""
    from warenhaus.deals import services
    from warenhaus.deals.models import Hold, Ticket

    deal = _live_deal(make_product, units=20)
    account = make_user(email=f"tabs-{uuid.uuid4().hex[:8]}@example.de")

    def join(i):
        return services.join_queue(deal_id=deal.pk, user=account, quantity=1 + i % LIMIT)

    results = run_together(SHOPPERS, join)
    _assert_no_exceptions(results)
    assert Ticket.objects.filter(deal=deal, who=f"user:{account.pk}").count() == 1
    assert len({r["ticket"] for r in results}) == 1, results
    # a tab that found the admission busy saw its ticket waiting; a later poll admits it
    status = results[0]
    for _ in range(40):
        status = services.ticket_status(deal_id=deal.pk, ticket_id=status["ticket"])
        if status["state"] != "waiting":
            break
        time.sleep(0.25)
    assert status["state"] == "admitted", status
    held = Hold.objects.filter(deal=deal)  # the account is the only one in line
    assert held.count() == 1 and held.get().ticket == status["ticket"]
    assert held.get().quantity <= LIMIT
