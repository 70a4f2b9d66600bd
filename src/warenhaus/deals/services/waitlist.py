"""The wait list: when nothing is free, a place in the order of arrival, and an offer (a hold
for ``offer_minutes`` and a mail) when units come back.

Its order keys are the waiting room's, so people moved there from the line keep their place
among those who came to it directly. Once anyone waits on it, the line lets in nobody who came
after them (:func:`warenhaus.deals.services.admission.admit_batch`). Places are answered from a
per-process snapshot of its order plus a count of those who joined since
(:mod:`warenhaus.deals.ranks`).
"""

from __future__ import annotations

import bisect
import secrets
from datetime import datetime, timedelta

from django.db import connection, transaction

from warenhaus.core.clock import now
from warenhaus.core.errors import Conflict, NotFound, ValidationFailed
from warenhaus.notifications.services import enqueue_mail

from .. import sql
from ..cache import cache
from ..models import (
    Deal,
    DealState,
    Hold,
    HoldSource,
    HoldStatus,
    WaitlistEntry,
    WaitlistStatus,
)
from ..waiting_room import TicketInfo, TicketState, order_key, waiting_room
from .holds import HOLD_FIELDS, carts_for, hold_json, past_deadline, put_in_carts, take_up_to
from .household import check_quantity, check_usage, household_keys
from .setup import cached_deal, state_of, whole


def waitlist_open(deal_id: int) -> bool:
    """Whether people wait on the deal's wait list (the line was closed to it), cached like the
    deal."""
    return cache.remembered(
        cache.waitlist_open,
        deal_id,
        lambda: WaitlistEntry.objects.filter(
            deal_id=deal_id, status=WaitlistStatus.WAITING
        ).exists(),
    )


def waitlist_entry_of(deal_id: int, who: str) -> WaitlistEntry | None:
    """``who``'s wait-list place (its other fields are loaded when asked for)."""
    row = sql.waitlist_entry_row(deal_id, who)
    return None if row is None else sql.entry_from_row(row)


def _waiting_places(deal_id: int) -> list[tuple[int, int]]:
    return list(
        WaitlistEntry.objects.filter(deal_id=deal_id, status=WaitlistStatus.WAITING)
        .order_by("order_key", "id")
        .values_list("order_key", "id")
    )


def _snapshot(deal_id: int) -> tuple[list, int | None]:
    """This process's snapshot of the wait list's places, and the newest id in it."""
    line = cache.waitlist_ranks.line(deal_id, load=lambda: _waiting_places(deal_id))
    return line, cache.waitlist_ranks.newest(deal_id)


def waitlist_place(deal_id: int, me: tuple[int, int]) -> int:
    """1-based place on the wait list of the waiting entry with place ``me``: this process's
    snapshot (at most ``DEALS_CACHE_SECONDS`` old) answers for those in it; for a newer entry,
    the newcomers since the snapshot are counted (by id, not by place: someone whose refused
    first try came earlier joins in front of people already waiting; those who left since are
    counted for at most that long)."""
    line, newest = _snapshot(deal_id)
    ahead = bisect.bisect_left(line, me)
    if newest is None or me[1] > newest:
        ahead += sql.newcomers_ahead(deal_id, newest, me)
    return ahead + 1


def entry_json(entry: WaitlistEntry, *, position: int | None = None) -> dict:
    if position is None and entry.status == WaitlistStatus.WAITING:
        position = waitlist_place(entry.deal_id, (entry.order_key, entry.id))
    return {
        "entry": entry.token,
        "status": entry.status,
        "position": position,
        "quantity": entry.quantity,
    }


def to_sold_out_many(deal: Deal, tickets: list) -> int:
    """The tickets are told "sold out", each with its wait-list place when it gave an e-mail
    address, in the line's order. The places come first: whoever reads a ticket as sold out
    finds its place there (the other way round, a poll in between saw "sold out" and no
    place)."""
    if not tickets:
        return 0
    room = waiting_room()
    at = now()
    WaitlistEntry.objects.bulk_create(
        [
            WaitlistEntry(
                deal=deal,
                who=t.who,
                email=t.data["email"],
                quantity=min(t.quantity, deal.limit_per_customer),
                language=t.data.get("language", "de"),
                token=secrets.token_urlsafe(18),
                created_at=at,
                order_key=t.order_key,
            )
            for t in tickets
            if t.data.get("email")
        ],
        ignore_conflicts=True,
    )
    # someone already on the wait list (they joined it directly while waiting in line) keeps
    # the earlier of their two places: the line's
    line_key = {t.who: t.order_key for t in tickets if t.data.get("email")}
    for pk, who, key in WaitlistEntry.objects.filter(
        deal=deal, who__in=list(line_key), status=WaitlistStatus.WAITING
    ).values_list("pk", "who", "order_key"):
        if key > line_key[who]:
            WaitlistEntry.objects.filter(pk=pk, status=WaitlistStatus.WAITING).update(
                order_key=line_key[who]
            )
    cache.waitlist_changed(deal.pk)
    moved = room.update_many(
        deal.pk,
        [(t.id, None) for t in tickets],
        state=TicketState.SOLD_OUT,
        only_from=TicketState.WAITING,
    )
    if moved < len(tickets):
        for t in tickets:
            current = room.get(deal.pk, t.id)
            if (
                current is not None
                and current.state == TicketState.ADMITTED
                and t.data.get("email")
            ):  # let in meanwhile: served, not waiting
                WaitlistEntry.objects.filter(
                    deal=deal, who=t.who, status=WaitlistStatus.WAITING
                ).update(status=WaitlistStatus.LEFT)
    return moved


def _entry_values(
    deal_id: int,
    *,
    who: str,
    email: str,
    quantity: int,
    language: str,
    at: datetime,
    arrival: float,
) -> tuple[tuple, list]:
    columns = (
        "deal_id",
        "who",
        "email",
        "language",
        "quantity",
        "status",
        "token",
        "created_at",
        "order_key",
    )
    values = [
        deal_id,
        who,
        email,
        language,
        quantity,
        WaitlistStatus.WAITING.value,
        secrets.token_urlsafe(18),
        connection.ops.adapt_datetimefield_value(at),
        order_key(before_start=False, now=arrival),
    ]
    return columns, values


def _new_waitlist_entry(
    deal_id: int,
    *,
    who: str,
    email: str,
    quantity: int,
    language: str,
    at: datetime,
    arrival: float,
) -> WaitlistEntry:
    """``who``'s place on the wait list, new (made ``at``, in the order of ``arrival``) unless
    they have one: whoever was first keeps theirs (no error to recover from)."""
    columns, values = _entry_values(
        deal_id, who=who, email=email, quantity=quantity, language=language, at=at, arrival=arrival
    )
    row = sql.insert_waitlist_entry(columns, values)
    return waitlist_entry_of(deal_id, who) if row is None else sql.entry_from_row(row)


def new_waitlist_place(
    deal: Deal,
    *,
    who: str,
    email: str,
    quantity: int,
    language: str,
    at: datetime,
    arrival: float,
    household: bool,
) -> dict | None:
    """A new wait-list place for ``who`` as the API answers it, or None when they have one
    already or (``household``) their household may take fewer than ``quantity`` units more.
    What a sold-out rush asks thousands of times: the household's usage, the insert, and the
    count of those ahead who joined since this process's snapshot, in one statement."""
    line, newest = _snapshot(deal.pk)
    columns, values = _entry_values(
        deal.pk, who=who, email=email, quantity=quantity, language=language, at=at, arrival=arrival
    )
    row = sql.insert_waitlist_place(
        columns,
        values,
        deal_id=deal.pk,
        household=household_keys(who, email) if household else None,
        quantity=quantity,
        newest=newest,
    )
    if row is None:
        return None
    entry = sql.entry_from_row(row[:-1])
    cache.remember(cache.waitlist_open, deal.pk, True)
    return entry_json(
        entry, position=bisect.bisect_left(line, (entry.order_key, entry.id)) + row[-1] + 1
    )


def check_held(deal: Deal, who: str, quantity: int) -> None:
    """Refuse ``limit_per_customer`` when the turn owner's live holds leave no room: one turn per
    deal, so a unit held from the queue is not held a second time from the wait list."""
    held = sum(
        Hold.objects.filter(deal_id=deal.pk, who=who, status=HoldStatus.ACTIVE).values_list(
            "quantity", flat=True
        )
    )
    if held + quantity > deal.limit_per_customer:
        limit = deal.limit_per_customer
        raise Conflict(
            f"You already hold {held} of this deal (at most {limit} per customer).",
            code="limit_per_customer",
            limit=limit,
            reason="held",
        )


def join_waitlist(
    *,
    deal_id,
    who: str,
    email: str,
    quantity: int = 1,
    language: str = "de",
    deal: Deal | None = None,
    at: datetime | None = None,
    arrival: float | None = None,
) -> dict:
    """A place on the wait list, behind everyone who came before ``arrival`` (epoch seconds;
    default ``at``, now), in line or on the wait list; whoever has a place keeps it."""
    deal = deal or cached_deal(deal_id)
    at = at or now()
    quantity = whole(quantity, "quantity", low=1, high=99)
    if not email:
        raise ValidationFailed(
            "The wait list needs an e-mail address to tell you when a unit is free.",
            code="email_required",
        )
    check_quantity(deal, quantity)
    state = state_of(deal, at)
    if state in (DealState.ENDED, DealState.CANCELLED):
        raise Conflict("This deal is over.", code="deal_ended")
    if state == DealState.SCHEDULED or (
        state == DealState.LIVE and deal.left > 0 and not waitlist_open(deal.pk)
    ):
        # the wait list is for when nothing is free: a place on it closes the line to everyone
        # who comes later, so while units are free it would turn them away. Once someone waits
        # on it, the line is closed already (and those it turned away, without an address
        # then, may ask for a place)
        raise Conflict(
            "Units of this deal are still free: please join the queue.", code="deal_not_sold_out"
        )
    if deal.sold:  # nobody waits for a unit their household may not buy (as in the queue)
        check_usage(deal, household_keys(who, email), quantity)
    check_held(deal, who, quantity)
    entry = _new_waitlist_entry(
        deal.pk,
        who=who,
        email=email,
        quantity=quantity,
        language=language,
        at=at,
        arrival=at.timestamp() if arrival is None else arrival,
    )
    if entry.status == WaitlistStatus.WAITING:
        cache.remember(cache.waitlist_open, deal.pk, True)
    return entry_json(entry)


def waitlist_status(*, deal_id, token: str) -> dict:
    entry = WaitlistEntry.objects.filter(
        deal_id=cached_deal(deal_id).pk, token=str(token or "")[:64]
    ).first()
    if entry is None:
        raise NotFound("No such wait-list place.", code="waitlist_entry_not_found")
    out = entry_json(entry)
    if entry.status == WaitlistStatus.OFFERED:
        hold = (
            Hold.objects.filter(deal_id=entry.deal_id, ticket=entry.token)
            .values(*HOLD_FIELDS)
            .first()
        )
        if hold is not None:
            at = now()
            out["cart_id"] = hold["cart_id"]
            out["hold"] = hold_json(hold, at)
            if past_deadline(hold, at):  # before the sweep ends it
                out["status"] = WaitlistStatus.LAPSED.value
    return out


def offer_to_waitlist(deal: Deal, *, at: datetime | None = None) -> int:
    """Offer free units to the wait list in order, at the deal price, for ``offer_minutes``:
    a hold in a cart of their own and a mail through the outbox. Returns offers made."""
    at = at or now()
    made = 0
    while True:
        with transaction.atomic():
            entry = (
                WaitlistEntry.objects.select_for_update(skip_locked=True)
                .filter(deal=deal, status=WaitlistStatus.WAITING)
                .order_by("order_key", "id")
                .first()
            )
            quantity = take_up_to(deal.pk, entry.quantity) if entry is not None else 0
            if not quantity:
                cache.forget_deal(deal.pk)
                cache.waitlist_changed(deal.pk)
                return made
            turn = TicketInfo(
                id=entry.token,
                deal_id=deal.pk,
                who=entry.who,
                quantity=quantity,
                state="",
                order_key=0,
                joined_at=0.0,
            )
            cart_id = carts_for([turn])[entry.token]
            hold = Hold.objects.create(
                deal=deal,
                ticket=entry.token,
                source=HoldSource.WAITLIST,
                cart_id=cart_id,
                who=entry.who,
                quantity=quantity,
                expires_at=at + timedelta(minutes=deal.offer_minutes),
                created_at=at,
            )
            put_in_carts(deal, [(cart_id, quantity, hold.pk)])
            WaitlistEntry.objects.filter(pk=entry.pk).update(
                status=WaitlistStatus.OFFERED, offered_at=at
            )
            enqueue_mail(
                kind="deal_offer",
                to_email=entry.email,
                template="deal_offer",
                language=entry.language,
                context={"deal": deal, "hold": hold, "entry_token": entry.token},
                dedupe_key=f"deal_offer:{hold.pk}",
                related_object=f"deal:{deal.pk}",
            )
            made += 1
