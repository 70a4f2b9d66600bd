"""The waiting room from the shopper's side: joining a deal's line, and polling a ticket.

In a rush these are what the server does thousands of times a second, so they only read (a
join writes its ticket: one statement, or one Redis script): the deal's row and the other
answers come from this process's cache (:mod:`warenhaus.deals.cache`). Units are taken by the
admitter (:mod:`.admission`), never here.
"""

from __future__ import annotations

import math
import secrets
from datetime import datetime

from warenhaus.core.clock import now
from warenhaus.core.errors import Conflict, NotFound

from ..cache import cache
from ..models import Deal, DealState, Hold
from ..waiting_room import TicketState, waiting_room
from .admission import admit_due, admitter_alive
from .holds import HOLD_FIELDS, hold_json, past_deadline
from .household import check_quantity, check_usage, household_keys, turn_owner
from .setup import cached_deal, state_of, whole
from .waitlist import (
    entry_json,
    join_waitlist,
    new_waitlist_place,
    waitlist_entry_of,
    waitlist_open,
)

#: the longest a waiting shopper is told to wait before polling again
POLL_AFTER_MAX = 10


def join_queue(
    *,
    deal_id,
    user=None,
    guest: str = "",
    email: str = "",
    quantity=1,
    cart_id: str = "",
    language: str = "de",
    arrived: float | None = None,
) -> dict:
    """A place in the deal's waiting room (or, when everything is sold, on the wait list).
    In a rush this is one statement (the ticket's insert) or one Redis script. ``arrived``
    (epoch seconds, not after now): when this shopper first came, if a join of theirs was
    refused for overload then (the place in line counts from there).

    The turn is the account's, else the capability ``guest`` (:func:`.household.turn_owner`);
    a guest's ``email`` is where the wait list writes and a household key, never who they are."""
    deal = cached_deal(deal_id)
    quantity = whole(quantity, "quantity", low=1, high=99)
    check_quantity(deal, quantity)
    who = turn_owner(user=user, guest=guest, email=email)
    at = now()
    arrival = at.timestamp() if arrived is None else min(arrived, at.timestamp())
    state = state_of(deal, at)
    if state in (DealState.ENDED, DealState.CANCELLED):
        raise Conflict("This deal is over.", code="deal_ended")
    contact = (
        user.email
        if user is not None and getattr(user, "is_authenticated", False)
        else (email or "")
    )
    keys = household_keys(who, contact)
    closed = state == DealState.SOLD_OUT or (
        state == DealState.LIVE and deal.left <= 0 and waitlist_open(deal.pk)
    )
    # household usage exists only once something was sold (checked again when buying); a
    # newcomer turned to the wait list has it checked by the statement that gives the place
    if deal.sold and not (closed and contact):
        check_usage(deal, keys, quantity)
    room = waiting_room()
    if closed:
        # everything sold, or nothing free and the line closed to the wait list: a definite
        # answer at once, a wait-list place behind everyone who came earlier. Once anyone waits
        # on the wait list, the line never lets in someone who came after them
        # (:func:`.admission.admit_batch`), so it could not have given this newcomer a unit
        # either; the wait list's order keys keep the arrival order when people still in line
        # are moved there later. (Units held for others may still come back: with nobody on the
        # wait list yet, the newcomer queues for them.) Someone who has a ticket already (a
        # second click, a retry) is answered from it: whoever still waits in line keeps that place
        mine = room.ticket_of(deal.pk, who)
        if mine is not None:
            if deal.sold and contact:
                check_usage(deal, keys, quantity)
            return _status(deal, mine, at=at)
        return _sold_out_answer(
            deal,
            who=who,
            email=contact,
            quantity=quantity,
            language=language,
            at=at,
            arrival=arrival,
        )
    data = (
        {"cart_id": cart_id[:64], "email": contact, "language": language}
        if (cart_id or contact)
        else None
    )
    # whoever came before the start is in the pre-queue's draw, even if the server turned them
    # away then and they got in only after the start
    before_start = state == DealState.SCHEDULED or arrival < deal.starts_at.timestamp()
    ticket, _ = room.join(deal.pk, who, quantity, before_start=before_start, now=arrival, data=data)
    return _status(deal, ticket, at=at)


def _sold_out_answer(
    deal: Deal, *, who: str, email: str, quantity: int, language: str, at: datetime, arrival: float
) -> dict:
    """A newcomer's definite answer when the line is closed to them: sold out, and (with an
    e-mail address to tell them) a wait-list place. The usage of their household is checked by
    the place's own statement (:func:`.waitlist.new_waitlist_place`)."""
    out = {
        "ticket": None,
        "state": TicketState.SOLD_OUT.value,
        "position": None,
        "eta_seconds": None,
        "cart_id": None,
        "hold": None,
        "waitlist": None,
    }
    if email:
        out["waitlist"] = new_waitlist_place(
            deal,
            who=who,
            email=email,
            quantity=quantity,
            language=language,
            at=at,
            arrival=arrival,
            household=bool(deal.sold),
        )
        if out["waitlist"] is None:
            # a place already, or the household's limit reached (join_waitlist tells which)
            out["waitlist"] = join_waitlist(
                deal_id=deal.pk,
                who=who,
                email=email,
                quantity=quantity,
                language=language,
                deal=deal,
                at=at,
                arrival=arrival,
            )
    return out


def _eta(deal: Deal, position: int | None, at: datetime) -> int | None:
    if position is None:
        return None
    per_second = deal.admissions_per_minute / 60
    wait = position / per_second
    if at < deal.starts_at:
        wait += (deal.starts_at - at).total_seconds()
    return int(math.ceil(wait))


def _poll_after(deal: Deal, position: int | None, at: datetime) -> int:
    """When a waiting shopper should ask again (``poll_after_seconds``): at the start for the
    pre-queue, spread over a few seconds so the start is not one burst; in line, about a third
    of the expected wait, from 1 to ``POLL_AFTER_MAX`` seconds, jittered; ``POLL_AFTER_MAX`` while
    no unit is free (only one given back can let them in); soon for those behind every unit that
    could still come free (they are about to be told "sold out")."""
    jitter = secrets.randbelow(3)
    if at < deal.starts_at:
        return max(1, int(math.ceil((deal.starts_at - at).total_seconds()))) + jitter
    if position is not None and position > deal.left + deal.held:
        return 2 + jitter
    if deal.left <= 0:
        # nothing free: only a unit someone gives back (a hold running out after its minutes, a
        # line removed) lets them in, however near the front they are; no point asking every second
        return POLL_AFTER_MAX + jitter
    wait = (_eta(deal, position, at) or 0) / 3
    return int(min(POLL_AFTER_MAX, max(1, wait))) + jitter


def ticket_status(*, deal_id, ticket_id: str, deal: Deal | None = None) -> dict:
    """What a waiting shopper polls: state, position, estimated wait, when to ask again; once
    admitted, the cart and the hold. One read of the ticket (and of the hold once admitted);
    the position comes from the waiting room's estimate."""
    deal = deal or cached_deal(deal_id)
    ticket = waiting_room().get(deal.pk, str(ticket_id or "")[:64])
    if ticket is None:
        raise NotFound("No such ticket.", code="ticket_not_found")
    return _status(deal, ticket)


def _status(deal: Deal, ticket, *, at: datetime | None = None) -> dict:
    at = at or now()
    room = waiting_room()
    if (
        ticket.state == TicketState.WAITING
        and state_of(deal, at) in (DealState.LIVE, DealState.SOLD_OUT)
        and not admitter_alive(deal.pk)
        and admit_due(deal.pk, at=at, from_poll=True) is not None
    ):  # no worker: the poll moves the line
        cache.forget_deal(deal.pk)
        deal = cached_deal(deal.pk)
        ticket = room.get(deal.pk, ticket.id) or ticket
    out = {
        "ticket": ticket.id,
        "deal": deal.pk,
        "state": ticket.state,
        "position": None,
        "eta_seconds": None,
        "cart_id": None,
        "hold": None,
        "waitlist": None,
    }
    if ticket.state == TicketState.WAITING:
        current = state_of(deal, at)
        if current in (DealState.ENDED, DealState.CANCELLED):
            room.update(
                deal.pk, ticket.id, state=TicketState.SOLD_OUT, only_from=TicketState.WAITING
            )
            out.update(state=TicketState.SOLD_OUT.value)
            return out
        if current == DealState.SCHEDULED:
            # the pre-queue's order is drawn at the start: no place to show yet
            out.update(
                eta_seconds=_eta(deal, 0, at),
                starts_in_seconds=int((deal.starts_at - at).total_seconds()),
                poll_after_seconds=_poll_after(deal, None, at),
            )
            return out
        # the place the back end read with the ticket (Redis), else the estimate
        pos = (
            ticket.position_hint
            if ticket.position_hint is not None
            else room.position_estimate(deal.pk, ticket)
        )
        out.update(
            position=pos,
            eta_seconds=_eta(deal, pos, at),
            poll_after_seconds=_poll_after(deal, pos, at),
        )
    elif ticket.state in (TicketState.ADMITTED, TicketState.EXPIRED, TicketState.LEFT):
        if ticket.state == TicketState.LEFT:
            # the shopper let the held units go: their turn is over (API.md's states)
            out["state"] = TicketState.EXPIRED.value
        hold = Hold.objects.filter(deal_id=deal.pk, ticket=ticket.id).values(*HOLD_FIELDS).first()
        if hold is not None:
            out["cart_id"] = hold["cart_id"]
            out["hold"] = hold_json(hold, at)
            if past_deadline(hold, at):
                out["state"] = TicketState.EXPIRED.value
    elif ticket.state == TicketState.SOLD_OUT:
        entry = waitlist_entry_of(deal.pk, ticket.who)
        out["waitlist"] = entry_json(entry) if entry else None
    return out
