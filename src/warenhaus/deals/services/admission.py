"""Who gets the units: the admitter lets the line in (paced, in batches), closes it when
nothing is free, and gives units that come back (a hold ending, an order cancelled) to the next
person; the sweep is the worker's round of all that.

The worker's admitter (:func:`sweep`, every ``DEALS_SWEEP_INTERVAL`` seconds) admits in
batches, closes the line when nothing is free and offers returned units to the wait list, one
deal at a time under the waiting room's lease. While its heartbeat is missing (no worker
running, or it died), a shopper's poll admits instead, paced and under the same lease, so the
line still moves.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q

from warenhaus.core.clock import now

from ..cache import cache
from ..events import hold_expired
from ..models import Deal, DealState, Hold, HoldSource, HoldStatus, WaitlistEntry, WaitlistStatus
from ..waiting_room import TicketState, waiting_room
from .holds import carts_for, put_in_carts
from .setup import release_rest, state_of
from .waitlist import offer_to_waitlist, to_sold_out_many

#: tickets let in per round of the admitter
ADMIT_BATCH = 200
#: how long one admitter keeps the deal's lease (seconds)
ADMITTER_LEASE_SECONDS = 5.0
#: seconds a process leaves admission to others after finding the admitter's lease taken
POLL_ADMIT_PAUSE = 0.2
#: how recent the admitter's heartbeat must be for shoppers' requests to leave admission to it
ADMITTER_ALIVE_SECONDS = 10.0
#: tickets moved from the line to the wait list per round of the admitter
CLOSE_BATCH = 1000
#: how long after a deal's end its waiting room is kept (polls of old tickets, holds running out)
ROOM_KEPT = timedelta(days=1)


def admitter_alive(deal_id: int) -> bool:
    """Whether the worker's admitter has looked after the deal lately (cached like the deal)."""

    def load() -> bool:
        beat = waiting_room().last_beat(deal_id)
        return beat is not None and time.time() - beat < ADMITTER_ALIVE_SECONDS

    return cache.remembered(cache.admitter, deal_id, load)


def admit_due(deal, *, at: datetime | None = None, from_poll: bool = False) -> int | None:
    """Let in as many waiting shoppers as the pace allows by now and units remain for, in
    order, in one transaction; then close the line if nothing is free. One admitter per deal
    at a time (the waiting room's lease): None if another has it (or, ``from_poll``, if this
    process found it taken less than ``POLL_ADMIT_PAUSE`` seconds ago), else how many were
    let in."""
    deal_id = getattr(deal, "pk", deal)
    at = at or now()
    if from_poll and time.monotonic() - cache.lease_busy.get(deal_id, -1e9) < POLL_ADMIT_PAUSE:
        return None
    room = waiting_room()
    owner = uuid.uuid4().hex
    if not room.acquire(deal_id, owner, ADMITTER_LEASE_SECONDS):
        cache.lease_busy[deal_id] = time.monotonic()
        return None
    try:
        n = admit_batch(deal_id, at=at)
        close_line(deal_id)
        return n
    finally:
        room.release(deal_id, owner)
        cache.forget_deal(deal_id)


def admit_batch(deal_id: int, *, at: datetime) -> int:
    """One batch of the line let in: holds in their carts for the next tickets in order, as
    far as the pace and the free units allow (under the admitter's lease)."""
    room = waiting_room()
    deal = Deal.objects.get(pk=deal_id)
    if state_of(deal, at) != DealState.LIVE or deal.left <= 0:
        return 0
    elapsed = max(0.0, (at - deal.starts_at).total_seconds())
    # the pace, with a first minute's worth let in at the start
    allowed = int(deal.admissions_per_minute * (1 + elapsed / 60))
    given = Hold.objects.filter(deal=deal, source=HoldSource.QUEUE).count()
    candidates = room.first_waiting(deal_id, max(0, min(allowed - given, ADMIT_BATCH)))
    if not candidates:
        return 0
    # people on the wait list (the line was closed to them, or they came when it was) come
    # before anyone in line who came after them
    first = (
        WaitlistEntry.objects.filter(deal=deal, status=WaitlistStatus.WAITING)
        .order_by("order_key", "id")
        .values_list("order_key", flat=True)
        .first()
    )
    if first is not None:
        to_sold_out_many(deal, [t for t in candidates if t.order_key > first])
        candidates = [t for t in candidates if t.order_key <= first]
    done: list[tuple[str, dict]] = []
    with transaction.atomic():
        # one batch at a time, whatever the lease; NO KEY: the rows that point at the deal (a
        # ticket's insert takes a key-share lock on it) are not held up meanwhile
        deal = Deal.objects.select_for_update(no_key=True).get(pk=deal_id)
        # a hold made by an admitter that died before telling the room (or, were two admitters
        # ever at work at once, by the other: read under the deal's lock, so it is seen)
        earlier = dict(
            Hold.objects.filter(deal=deal, ticket__in=[t.id for t in candidates]).values_list(
                "ticket", "pk"
            )
        )
        plan = _plan(deal, [t for t in candidates if t.id not in earlier])
        if plan:
            carts = carts_for([t for t, _ in plan])
            expires = at + timedelta(minutes=deal.hold_minutes)
            holds = Hold.objects.bulk_create(
                [
                    Hold(
                        deal=deal,
                        ticket=t.id,
                        source=HoldSource.QUEUE,
                        cart_id=carts[t.id],
                        who=t.who,
                        quantity=q,
                        expires_at=expires,
                        created_at=at,
                    )
                    for t, q in plan
                ]
            )
            put_in_carts(deal, [(h.cart_id, h.quantity, h.pk) for h in holds])
            taken = Deal.objects.filter(pk=deal_id).update(held=F("held") + sum(q for _, q in plan))
            if taken != 1:
                raise RuntimeError(f"deal {deal_id} vanished under its lock")
            done = [(h.ticket, _admitted(h.cart_id, h.pk, h.expires_at)) for h in holds]
    for row in Hold.objects.filter(pk__in=list(earlier.values())).values(
        "ticket", "cart_id", "pk", "expires_at"
    ):
        done.append((row["ticket"], _admitted(row["cart_id"], row["pk"], row["expires_at"])))
    room.update_many(deal_id, done, state=TicketState.ADMITTED, only_from=TicketState.WAITING)
    return len(done)


def _plan(deal: Deal, tickets: list) -> list[tuple[object, int]]:
    """``(ticket, quantity)`` for the tickets the free units reach, in order (the last unit goes
    to the next person even if they asked for two)."""
    free = deal.left
    plan = []
    for t in tickets:
        if free <= 0:
            break
        q = min(t.quantity, free)
        plan.append((t, q))
        free -= q
    return plan


def _admitted(cart_id: str, hold_id: int, expires_at: datetime) -> dict:
    """What an admitted ticket's data says: where its units are held, until when."""
    return {"cart_id": cart_id, "hold": hold_id, "expires_at": expires_at.isoformat()}


def close_line(deal_id: int) -> int:
    """When no unit is free, only the units held by others can still come back: the people in
    line who could get one of them keep waiting; everyone behind them gets a definite answer at
    once (sold out, and a wait-list place when they gave an e-mail address), in the line's
    order, so the wait list keeps it. Called by the admitter (under its lease). Returns how many
    were moved (at most ``CLOSE_BATCH`` per call; the next call goes on)."""
    deal = Deal.objects.get(pk=deal_id)
    if deal.left > 0:
        return 0
    may_come_back = deal.held
    kept = 0
    moved = []
    for ticket in waiting_room().first_waiting(deal.pk, may_come_back + CLOSE_BATCH):
        if kept < may_come_back:
            kept += ticket.quantity  # could still get at least one returned unit
            continue
        moved.append(ticket)
    return to_sold_out_many(deal, moved)


def units_returned(deal_id: int, *, at: datetime) -> None:
    """Units came back: the queue's next people first (paced), then the wait list. The
    worker's admitter does that in its next round; without one, it is done here."""
    if admitter_alive(deal_id):
        return
    deal = Deal.objects.get(pk=deal_id)
    if state_of(deal, at) != DealState.LIVE or deal.left <= 0:
        return
    if waiting_room().first_waiting(deal.pk, 1):
        # the waiting room may live outside the database: admit once the units are really back
        transaction.on_commit(lambda: admit_due(deal_id, at=now()))
    else:
        offer_to_waitlist(deal, at=at)


def release_hold(
    *, hold_id: int, status: str = HoldStatus.RELEASED, at: datetime | None = None
) -> bool:
    """End an active hold (``released`` by the shopper removing the line, ``expired`` by the
    sweep): its units go back to the deal, the cart line loses its deal price, the next person
    gets the units. False if it was not active."""
    at = at or now()
    with transaction.atomic():
        hold = Hold.objects.select_for_update().filter(pk=hold_id, status=HoldStatus.ACTIVE).first()
        if hold is None:
            return False
        if status == HoldStatus.EXPIRED and hold.expires_at > at:
            return False  # never before its deadline
        Hold.objects.filter(pk=hold.pk).update(status=status, ended_at=at)
        Deal.objects.filter(pk=hold.deal_id).update(held=F("held") - hold.quantity)
        if hold.source == HoldSource.WAITLIST:
            WaitlistEntry.objects.filter(
                deal_id=hold.deal_id, token=hold.ticket, status=WaitlistStatus.OFFERED
            ).update(status=WaitlistStatus.LAPSED)
        if status == HoldStatus.EXPIRED:
            hold_expired.send(
                hold_id=hold.pk,
                deal_id=hold.deal_id,
                cart_id=hold.cart_id,
                quantity=hold.quantity,
                at=at,
            )
    cache.forget_deal(hold.deal_id)
    if hold.source == HoldSource.QUEUE:
        waiting_room().update(
            hold.deal_id,
            hold.ticket,
            state=TicketState.EXPIRED if status == HoldStatus.EXPIRED else TicketState.LEFT,
            only_from=TicketState.ADMITTED,
        )
    units_returned(hold.deal_id, at=at)
    return True


def sweep(*, at: datetime | None = None, beat: bool = False) -> dict:
    """The worker's round (every ``DEALS_SWEEP_INTERVAL`` seconds): expire holds past their
    deadline, then for each live deal admit the line (paced, in one batch), close it when
    nothing is free and offer returned units to the wait list once nobody waits in line; give
    the unsold rest of ended deals back to regular stock. ``beat``: this is the worker's
    admitter, so shoppers' requests leave admission to it (:func:`admitter_alive`)."""
    at = at or now()
    room = waiting_room()
    live = list(
        Deal.objects.filter(
            starts_at__lte=at, ends_at__gt=at, cancelled_at__isnull=True
        ).values_list("pk", flat=True)
    )
    if beat:
        soon = Deal.objects.filter(
            starts_at__lte=at + timedelta(minutes=1), ends_at__gt=at, cancelled_at__isnull=True
        ).values_list("pk", flat=True)
        for pk in soon:
            room.beat(pk, time.time())
            cache.remember(cache.admitter, pk, True)
    expired = 0
    for hold_id in Hold.objects.filter(status=HoldStatus.ACTIVE, expires_at__lte=at).values_list(
        "pk", flat=True
    )[:1000]:
        expired += release_hold(hold_id=hold_id, status=HoldStatus.EXPIRED, at=at)
    admitted = 0
    for pk in live:
        admitted += admit_due(pk, at=at) or 0
        deal = Deal.objects.get(pk=pk)
        if deal.left > 0 and not room.first_waiting(pk, 1):
            offer_to_waitlist(deal, at=at)
    released = 0
    over = Deal.objects.filter(Q(ends_at__lte=at) | Q(cancelled_at__isnull=False))
    for deal in over.filter(units__gt=F("sold") + F("held") + F("released_units")):
        released += release_rest(deal)
    # a day after the end nobody polls a ticket any more: a waiting room outside the database
    # gives its memory back (the embedded one keeps its rows, for the record)
    cleared = 0
    for deal in over.filter(room_cleared_at__isnull=True).filter(
        Q(ends_at__lte=at - ROOM_KEPT) | Q(cancelled_at__lte=at - ROOM_KEPT)
    ):
        if room.name != "db":
            room.clear(deal.pk)
        cleared += Deal.objects.filter(pk=deal.pk, room_cleared_at__isnull=True).update(
            room_cleared_at=at
        )
    return {
        "expired": expired,
        "admitted": admitted,
        "released": released,
        "rooms_cleared": cleared,
    }
