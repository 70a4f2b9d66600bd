"""Use-cases of flash deals: making a deal, the waiting room (join, status, paced admission),
holds in carts, the sweep (expiry, offers, end of the deal), the wait list, and what checkout
and cancellation do with deal units.

The contingent is taken from the variant's stock when the deal is made (allocated, so regular
sales cannot eat it) and accounted on the deal: ``sold + held + released_units <= units``,
changed only by conditional UPDATEs and held by a check constraint. A hold is taken in the same
transaction as those units, in the shopper's cart at the deal price; checkout converts it (no
stock allocation, no price check: the hold guarantees both until its deadline); an expired or
released hold gives its units back, and the next person in line (queue first, then the wait
list) gets them.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import math
import secrets
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Min, Q

from warenhaus.core import audit, parsing
from warenhaus.core.clock import now
from warenhaus.core.errors import Conflict, NotFound, ValidationFailed

from .models import Deal, Hold, HoldStatus, HouseholdUsage, Sale, WaitlistEntry, WaitlistStatus
from .ranks import RankSnapshot
from .waiting_room import TicketInfo, order_key, waiting_room

log = logging.getLogger("warenhaus.deals")

ADMIT_BATCH = 200
ADMITTER_LEASE_SECONDS = 5.0
#: the longest a waiting shopper is told to wait before polling again
POLL_AFTER_MAX = 10
#: seconds a process leaves admission to others after finding the admitter's lease taken
POLL_ADMIT_PAUSE = 0.2
#: what a shopper sees of a deal before its start, during it, after it
STATES = ("scheduled", "live", "sold_out", "ended", "cancelled")


# --- making a deal ---------------------------------------------------------------------------


def _when(raw, field: str) -> datetime:
    return parsing.aware_time(raw, field)


#: the range of each whole number a deal takes
DEAL_BOUNDS = {
    "units": (1, 1_000_000),
    "limit_per_customer": (1, 99),
    "hold_minutes": (1, 240),
    "offer_minutes": (1, 24 * 60),
    "admissions_per_minute": (1, 1_000_000),
}


def _whole(raw, field: str, *, low: int, high: int) -> int:
    return parsing.whole(raw, field, low=low, high=high)


def _deal_number(raw, field: str) -> int:
    low, high = DEAL_BOUNDS[field]
    return _whole(raw, field, low=low, high=high)


def lowest_price_before(variant, at: datetime, *, days: int = 30) -> Decimal:
    """The lowest price the variant had in the ``days`` before ``at`` (EU price-reduction rules:
    the "prior price" a reduction is measured against)."""
    from warenhaus.catalog.models import PriceChange

    start = at - timedelta(days=days)
    in_window = PriceChange.objects.filter(
        variant=variant, changed_at__gte=start, changed_at__lt=at
    )
    lowest = in_window.aggregate(p=Min("new_price"))["p"]
    before = (
        PriceChange.objects.filter(variant=variant, changed_at__lt=start)
        .order_by("-changed_at", "-id")
        .values_list("new_price", flat=True)
        .first()
    )
    first_in_window = (
        in_window.order_by("changed_at", "id").values_list("old_price", flat=True).first()
    )
    # the price in force when the window opened: the last change before it, else the price the
    # first change in the window replaced, else (no change at all) today's price
    opening = (
        before
        if before is not None
        else first_in_window
        if first_in_window is not None
        else variant.price
    )
    return min(p for p in (lowest, opening) if p is not None)


def create_deal(
    *,
    actor,
    sku: str,
    deal_price,
    units,
    starts_at,
    ends_at,
    limit_per_customer=1,
    hold_minutes=10,
    offer_minutes=30,
    admissions_per_minute=None,
    source: str = "api",
) -> Deal:
    from warenhaus.catalog.models import Variant
    from warenhaus.inventory import services as inventory

    variant = Variant.objects.select_related("product").filter(sku=str(sku or "")[:64]).first()
    if variant is None:
        raise NotFound(f"No variant '{sku}'.", code="sku_not_found")
    price = parsing.amount(deal_price, "deal_price", allow_zero=False)
    if price >= variant.price:
        raise ValidationFailed(
            f"A deal price must be below the regular price ({variant.price} EUR).",
            code="deal_price_not_lower",
        )
    units = _deal_number(units, "units")
    start, end = _when(starts_at, "starts_at"), _when(ends_at, "ends_at")
    if end <= start:
        raise ValidationFailed(
            "ends_at must be after starts_at.", code="validation_error", field="ends_at"
        )
    if end <= now():  # its contingent would be taken from stock only to go back at the next sweep
        raise ValidationFailed(
            "ends_at must be in the future.", code="validation_error", field="ends_at"
        )
    limit = _deal_number(limit_per_customer, "limit_per_customer")
    hold = _deal_number(hold_minutes, "hold_minutes")
    offer = _deal_number(offer_minutes, "offer_minutes")
    pace = (
        settings.DEAL_ADMISSIONS_PER_MINUTE
        if admissions_per_minute is None
        else _deal_number(admissions_per_minute, "admissions_per_minute")
    )
    with transaction.atomic():
        inventory.allocate(
            variant_id=variant.pk, quantity=units, sku=variant.sku
        )  # the contingent is the deal's
        deal = Deal.objects.create(
            variant=variant,
            deal_price=price,
            regular_price=variant.price,
            lowest_price_30_days=lowest_price_before(variant, start),
            units=units,
            starts_at=start,
            ends_at=end,
            limit_per_customer=limit,
            hold_minutes=hold,
            offer_minutes=offer,
            admissions_per_minute=pace,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        audit.record(
            actor=actor,
            action="deal.create",
            obj=deal,
            after={
                "sku": variant.sku,
                "deal_price": str(price),
                "regular_price": str(variant.price),
                "units": units,
                "starts_at": start,
                "ends_at": end,
                "limit_per_customer": limit,
                "hold_minutes": hold,
            },
            source=source,
        )
    return deal


def get_deal(deal_id) -> Deal:
    try:
        pk = int(deal_id)
    except (TypeError, ValueError):
        raise NotFound("No such deal.", code="deal_not_found") from None
    deal = Deal.objects.select_related("variant__product").filter(pk=pk).first()
    if deal is None:
        raise NotFound("No such deal.", code="deal_not_found")
    return deal


def state_of(deal: Deal, at: datetime | None = None) -> str:
    at = at or now()
    if deal.cancelled_at:
        return "cancelled"
    if at < deal.starts_at:
        return "scheduled"
    if at >= deal.ends_at:
        return "ended"
    if deal.sold >= deal.units - deal.released_units:
        return "sold_out"
    return "live"


# --- household keys ----------------------------------------------------------------------------


def customer_key(*, user=None, guest: str = "", email: str = "") -> str:
    """Whose turn it is in the waiting room and on the wait list: the account, else a capability
    the guest holds (``cart:<id>``, ``session:<key>``), else (a guest who gave only an address) a
    new anonymous turn that only its ticket reaches. Never the e-mail address itself: anyone can
    type one, and a turn carries a ticket, a cart and a hold."""
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    if guest:
        return guest
    if email:
        return f"guest:{secrets.token_urlsafe(18)}"
    raise ValidationFailed(
        "Say who is queueing: log in, send the cart you hold, or give an e-mail address.",
        code="identity_required",
    )


def household_keys(who: str, contact: str) -> list[str]:
    """The keys whose usage limits a turn: its own, and the e-mail address a guest gave (a
    household's limit counts the address, whoever types it)."""
    keys = [who]
    if contact and not who.startswith("user:"):
        keys.append(f"email:{contact.strip().lower()}")
    return keys


def address_key(address: dict) -> str:
    """One household, however the address is typed: case, spaces, punctuation, ß/ss and
    "Str."/"Straße" do not matter."""

    def clean(value) -> str:
        text = "".join(ch for ch in str(value or "").casefold() if ch.isalnum())
        return text.replace("strasse", "str")

    norm = "|".join(clean(address.get(k)) for k in ("street", "postal_code", "city", "country"))
    return "address:" + hashlib.sha256(norm.encode()).hexdigest()[:32]


def _fetch_one(sql: str, params: list) -> tuple | None:
    """The first row of a hand-written query (for the few hot paths where the ORM's query
    building costs more than the query)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _usage_left(deal: Deal, keys: list[str]) -> int:
    """How many units the households ``keys`` may still take. One statement by hand: every join
    asks once something is sold, and the ORM's aggregate cost a rush a fifth of the server's
    time (docs/benchmarks.md)."""
    keys = sorted(set(keys))
    if not keys:
        return deal.limit_per_customer
    qn = connection.ops.quote_name
    (used,) = _fetch_one(
        f"SELECT MIN({qn('max_units')} - {qn('units')}) FROM {qn(HouseholdUsage._meta.db_table)} "  # noqa: S608 - names from the model, values bound
        f"WHERE {qn('deal_id')} = %s AND {qn('key')} IN ({', '.join(['%s'] * len(keys))})",
        [deal.pk, *keys],
    )
    return (
        deal.limit_per_customer if used is None else max(0, min(int(used), deal.limit_per_customer))
    )


def _check_usage(deal: Deal, keys: list[str], quantity: int) -> None:
    if _usage_left(deal, keys) < quantity:
        raise Conflict(
            f"You already have {deal.limit_per_customer} of this deal (at most {deal.limit_per_customer} per customer).",
            code="limit_per_customer",
            limit=deal.limit_per_customer,
            reason="user",
        )


def _count_household(deal: Deal, keys: list[str], quantity: int, *, why: dict[str, str]) -> None:
    """Add ``quantity`` to every household key, or refuse with the reason (inside a transaction).

    One statement for all keys (an upsert that adds only where the limit allows, and names the
    keys it counted), in the keys' order so concurrent checkouts lock the rows alike. The
    database's check constraint stays the last word."""
    keys = sorted(set(keys))
    limit = deal.limit_per_customer
    if quantity > limit:
        raise Conflict(
            f"At most {limit} per customer.",
            code="limit_per_customer",
            limit=limit,
            reason="quantity",
        )
    qn = connection.ops.quote_name
    table = qn(HouseholdUsage._meta.db_table)
    deal_id, key, units, max_units = (qn(c) for c in ("deal_id", "key", "units", "max_units"))
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(keys))
    sql = (
        f"INSERT INTO {table} ({deal_id}, {key}, {units}, {max_units}) VALUES {rows} "  # noqa: S608 - names from the model, values bound
        f"ON CONFLICT ({deal_id}, {key}) DO UPDATE SET {units} = {table}.{units} + excluded.{units} "
        f"WHERE {table}.{units} + excluded.{units} <= {table}.{max_units} RETURNING {key}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [v for k in keys for v in (deal.pk, k, quantity, limit)])
        counted = {row[0] for row in cursor.fetchall()}
    for k in keys:
        if k not in counted:
            kind = k.split(":", 1)[0]
            raise Conflict(
                why.get(kind, f"At most {limit} per customer."),
                code="limit_per_customer",
                limit=limit,
                reason=kind,
            )


def _uncount_household(deal_id: int, keys: list[str], quantity: int) -> None:
    from django.db.models.functions import Greatest

    if keys:
        HouseholdUsage.objects.filter(deal_id=deal_id, key__in=sorted(set(keys))).update(
            units=Greatest(F("units") - quantity, 0)
        )


# --- the waiting room ----------------------------------------------------------------------------
#
# Who moves the line: the worker's admitter (:func:`sweep`, every ``DEALS_SWEEP_INTERVAL``
# seconds) admits in batches, closes the line when nothing is free and offers returned units to
# the wait list, one deal at a time under the waiting room's lease. Joins and polls only read
# (a join writes its ticket): in a rush they are what the server does thousands of times a
# second. While the admitter's heartbeat is missing (no worker running, or it died), a
# shopper's poll admits instead, paced and under the same lease, so the line still moves.

#: the deal rows joins and polls read, per process: deal id -> (monotonic time read, Deal)
_deal_cache: dict[int, tuple[float, Deal]] = {}
#: deal id -> (monotonic time read, whether the worker's admitter looks after the deal)
_admitter_cache: dict[int, tuple[float, bool]] = {}
#: how recent the admitter's heartbeat must be for shoppers' requests to leave admission to it
ADMITTER_ALIVE_SECONDS = 10.0
#: tickets moved from the line to the wait list per round of the admitter
CLOSE_BATCH = 1000
#: how long after a deal's end its waiting room is kept (polls of old tickets, holds running out)
ROOM_KEPT = timedelta(days=1)


def _cache_seconds() -> float:
    return float(getattr(settings, "DEALS_CACHE_SECONDS", 1.0))


def cached_deal(deal_id) -> Deal:
    """The deal's own row as joins and polls need it, at most ``DEALS_CACHE_SECONDS`` old
    (per process; dropped when this process changes the deal). Its start and end never change;
    counters may lag by that much, which only decides what a shopper is told first: units are
    taken by the admitter from the fresh row, and the database's check holds the contingent."""
    try:
        pk = int(deal_id)
    except (TypeError, ValueError):
        raise NotFound("No such deal.", code="deal_not_found") from None
    hit = _deal_cache.get(pk)
    if hit is not None and time.monotonic() - hit[0] <= _cache_seconds():
        return hit[1]
    deal = Deal.objects.filter(pk=pk).first()
    if deal is None:
        raise NotFound("No such deal.", code="deal_not_found")
    _deal_cache[pk] = (time.monotonic(), deal)
    return deal


def _forget(deal_id) -> None:
    _deal_cache.pop(int(deal_id), None)


#: deal id -> (monotonic time read, whether anyone waits on the wait list)
_waitlist_cache: dict[int, tuple[float, bool]] = {}
_waitlist_ranks = RankSnapshot()


def _waitlist_open(deal_id: int) -> bool:
    """Whether people wait on the deal's wait list (the line was closed to it), cached like the deal."""
    hit = _waitlist_cache.get(deal_id)
    if hit is not None and time.monotonic() - hit[0] <= _cache_seconds():
        return hit[1]
    value = WaitlistEntry.objects.filter(deal_id=deal_id, status=WaitlistStatus.WAITING).exists()
    _waitlist_cache[deal_id] = (time.monotonic(), value)
    return value


def _waitlist_changed(deal_id: int) -> None:
    _waitlist_cache.pop(deal_id, None)
    _waitlist_ranks.forget(deal_id)


def forget_everything() -> None:
    """Drop every per-process cache of deals (tests: deal ids repeat between databases)."""
    _deal_cache.clear()
    _admitter_cache.clear()
    _waitlist_cache.clear()
    _lease_busy.clear()
    _waitlist_ranks.forget()
    room = waiting_room()
    if hasattr(room, "_ranks"):
        room._ranks.forget()


def admitter_alive(deal_id: int) -> bool:
    """Whether the worker's admitter has looked after the deal lately (cached like the deal)."""
    hit = _admitter_cache.get(deal_id)
    if hit is not None and time.monotonic() - hit[0] <= _cache_seconds():
        return hit[1]
    beat = waiting_room().last_beat(deal_id)
    alive = beat is not None and time.time() - beat < ADMITTER_ALIVE_SECONDS
    _admitter_cache[deal_id] = (time.monotonic(), alive)
    return alive


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

    The turn is the account's, else the capability ``guest`` (:func:`customer_key`); a guest's
    ``email`` is where the wait list writes and a household key, never who they are."""
    deal = cached_deal(deal_id)
    quantity = _whole(quantity, "quantity", low=1, high=99)
    if quantity > deal.limit_per_customer:
        raise Conflict(
            f"At most {deal.limit_per_customer} per customer.",
            code="limit_per_customer",
            limit=deal.limit_per_customer,
            reason="quantity",
        )
    who = customer_key(user=user, guest=guest, email=email)
    at = now()
    arrival = at.timestamp() if arrived is None else min(arrived, at.timestamp())
    state = state_of(deal, at)
    if state in ("ended", "cancelled"):
        raise Conflict("This deal is over.", code="deal_ended")
    contact = (
        user.email
        if user is not None and getattr(user, "is_authenticated", False)
        else (email or "")
    )
    keys = household_keys(who, contact)
    closed = state == "sold_out" or (state == "live" and deal.left <= 0 and _waitlist_open(deal.pk))
    # household usage exists only once something was sold (checked again when buying); a
    # newcomer turned to the wait list has it checked by the statement that gives the place
    if deal.sold and not (closed and contact):
        _check_usage(deal, keys, quantity)
    room = waiting_room()
    if closed:
        # everything sold, or nothing free and the line closed to the wait list: a definite
        # answer at once, a wait-list place behind everyone who came earlier. Once anyone waits
        # on the wait list, the line never lets in someone who came after them
        # (:func:`_admit_batch`), so it could not have given this newcomer a unit either; the
        # wait list's order keys keep the arrival order when people still in line are moved
        # there later. (Units held for others may still come back: with nobody on the wait
        # list yet, the newcomer queues for them.) Someone who has a ticket already (a second
        # click, a retry) is answered from it: whoever still waits in line keeps that place
        mine = room.ticket_of(deal.pk, who)
        if mine is not None:
            if deal.sold and contact:
                _check_usage(deal, keys, quantity)
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
    before_start = state == "scheduled" or arrival < deal.starts_at.timestamp()
    ticket, _ = room.join(deal.pk, who, quantity, before_start=before_start, now=arrival, data=data)
    return _status(deal, ticket, at=at)


def _sold_out_answer(
    deal: Deal, *, who: str, email: str, quantity: int, language: str, at: datetime, arrival: float
) -> dict:
    """A newcomer's definite answer when the line is closed to them: sold out, and (with an
    e-mail address to tell them) a wait-list place. The usage of their household is checked by
    the place's own statement (:func:`_new_waitlist_place`)."""
    out = {
        "ticket": None,
        "state": "sold_out",
        "position": None,
        "eta_seconds": None,
        "cart_id": None,
        "hold": None,
        "waitlist": None,
    }
    if email:
        out["waitlist"] = _new_waitlist_place(
            deal,
            who=who,
            email=email,
            quantity=quantity,
            language=language,
            at=at,
            arrival=arrival,
            household=bool(deal.sold),
        )
        if (
            out["waitlist"] is None
        ):  # a place already, or the household's limit reached (join_waitlist tells which)
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
        ticket.state == "waiting"
        and state_of(deal, at) in ("live", "sold_out")
        and not admitter_alive(deal.pk)
    ):
        if (
            admit_due(deal.pk, at=at, from_poll=True) is not None
        ):  # no worker: the poll moves the line
            _forget(deal.pk)
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
    if ticket.state == "waiting":
        current = state_of(deal, at)
        if current in ("ended", "cancelled"):
            room.update(deal.pk, ticket.id, state="sold_out", only_from="waiting")
            out.update(state="sold_out")
            return out
        if current == "scheduled":
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
    elif ticket.state in ("admitted", "expired", "left"):
        if (
            ticket.state == "left"
        ):  # the shopper let the held units go: their turn is over (API.md's states)
            out["state"] = "expired"
        hold = (
            Hold.objects.filter(deal_id=deal.pk, ticket=ticket.id)
            .values("cart_id", "quantity", "expires_at", "status")
            .first()
        )
        if hold is not None:
            out["cart_id"] = hold["cart_id"]
            out["hold"] = {
                "quantity": hold["quantity"],
                "expires_at": hold["expires_at"].isoformat(),
                "status": hold["status"],
            }
            if hold["status"] == HoldStatus.ACTIVE and hold["expires_at"] <= at:
                out["state"] = "expired"
                out["hold"]["status"] = "expired"
    elif ticket.state == "sold_out":
        entry = _waitlist_entry_of(deal.pk, ticket.who)
        out["waitlist"] = _entry_json(entry) if entry else None
    return out


#: the wait-list columns a poll needs, in the model's field order (``from_db`` defers the rest)
_ENTRY_FIELDS = ("id", "deal_id", "who", "quantity", "status", "token", "order_key")


def _entry_from_row(row: tuple) -> WaitlistEntry:
    """A wait-list entry from a hand-written query's row of ``_ENTRY_FIELDS``."""
    return WaitlistEntry.from_db(connection.alias, list(_ENTRY_FIELDS), row)


def _waitlist_entry_of(deal_id: int, who: str) -> WaitlistEntry | None:
    """``who``'s wait-list place (its other fields are loaded when asked for). One statement by
    hand: everyone told "sold out" polls it, and the ORM's query building cost the rush an
    eighth of the server's time (docs/benchmarks.md)."""
    qn = connection.ops.quote_name
    row = _fetch_one(
        f"SELECT {', '.join(map(qn, _ENTRY_FIELDS))} FROM {qn(WaitlistEntry._meta.db_table)} "  # noqa: S608 - names from the model, values bound
        f"WHERE {qn('deal_id')} = %s AND {qn('who')} = %s",
        [deal_id, who],
    )
    return None if row is None else _entry_from_row(row)


def _newcomers_ahead(deal_id: int, newest: int | None, me: tuple[int, int]) -> int:
    """How many wait on the deal's wait list with places (``(order_key, id)``) before ``me``
    among those who joined after this process's snapshot (ids above ``newest``; None: all).
    Counted by id, not by place: someone whose refused first try came earlier joins with a
    place in front of people already waiting. An index range of the last second's newcomers;
    by hand, as above."""
    qn = connection.ops.quote_name
    sql = (
        f"SELECT COUNT(*) FROM {qn(WaitlistEntry._meta.db_table)} WHERE {qn('deal_id')} = %s AND {qn('status')} = %s "  # noqa: S608
        f"AND ({qn('order_key')}, {qn('id')}) < (%s, %s)"
    )
    params = [deal_id, WaitlistStatus.WAITING.value, *me]
    if newest is not None:
        sql += f" AND {qn('id')} > %s"
        params.append(newest)
    return _fetch_one(sql, params)[0]


def _waitlist_place(deal_id: int, me: tuple[int, int]) -> int:
    """1-based place on the wait list of the waiting entry with place ``me``: this process's
    snapshot (at most ``DEALS_CACHE_SECONDS`` old) answers for those in it; for a newer entry,
    the newcomers since the snapshot are counted (those who left since are counted for at most
    that long)."""
    line = _waitlist_ranks.line(deal_id, load=lambda: _waiting_places(deal_id))
    newest = _waitlist_ranks.newest(deal_id)
    ahead = bisect.bisect_left(line, me)
    if newest is None or me[1] > newest:
        ahead += _newcomers_ahead(deal_id, newest, me)
    return ahead + 1


def _to_sold_out(deal: Deal, ticket) -> None:
    _to_sold_out_many(deal, [ticket])


def _to_sold_out_many(deal: Deal, tickets: list) -> int:
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
    _waitlist_changed(deal.pk)
    moved = room.update_many(
        deal.pk, [(t.id, None) for t in tickets], state="sold_out", only_from="waiting"
    )
    if moved < len(tickets):
        for t in tickets:
            current = room.get(deal.pk, t.id)
            if (
                current is not None and current.state == "admitted" and t.data.get("email")
            ):  # let in meanwhile: served, not waiting
                WaitlistEntry.objects.filter(
                    deal=deal, who=t.who, status=WaitlistStatus.WAITING
                ).update(status=WaitlistStatus.LEFT)
    return moved


#: deal id -> when this process last found the admitter's lease taken (monotonic seconds)
_lease_busy: dict[int, float] = {}


def admit_due(deal, *, at: datetime | None = None, from_poll: bool = False) -> int | None:
    """Let in as many waiting shoppers as the pace allows by now and units remain for, in
    order, in one transaction; then close the line if nothing is free. One admitter per deal
    at a time (the waiting room's lease): None if another has it (or, ``from_poll``, if this
    process found it taken less than ``POLL_ADMIT_PAUSE`` seconds ago), else how many were
    let in."""
    deal_id = getattr(deal, "pk", deal)
    at = at or now()
    if from_poll and time.monotonic() - _lease_busy.get(deal_id, -1e9) < POLL_ADMIT_PAUSE:
        return None
    room = waiting_room()
    owner = uuid.uuid4().hex
    if not room.acquire(deal_id, owner, ADMITTER_LEASE_SECONDS):
        _lease_busy[deal_id] = time.monotonic()
        return None
    try:
        n = _admit_batch(deal_id, at=at)
        _close_line(deal_id)
        return n
    finally:
        room.release(deal_id, owner)
        _forget(deal_id)


def _admit_batch(deal_id: int, *, at: datetime) -> int:
    room = waiting_room()
    deal = Deal.objects.get(pk=deal_id)
    if state_of(deal, at) != "live" or deal.left <= 0:
        return 0
    elapsed = max(0.0, (at - deal.starts_at).total_seconds())
    # the pace, with a first minute's worth let in at the start
    allowed = int(deal.admissions_per_minute * (1 + elapsed / 60))
    budget = min(allowed - Hold.objects.filter(deal=deal, source="queue").count(), ADMIT_BATCH)
    candidates = room.first_waiting(deal_id, max(0, budget))
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
        _to_sold_out_many(deal, [t for t in candidates if t.order_key > first])
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
        free = deal.left
        plan = []
        for t in candidates:
            if t.id in earlier:
                continue
            if free <= 0:
                break
            q = min(
                t.quantity, free
            )  # the last unit goes to the next person even if they asked for two
            plan.append((t, q))
            free -= q
        if plan:
            carts = _carts_for([t for t, _ in plan])
            expires = at + timedelta(minutes=deal.hold_minutes)
            holds = Hold.objects.bulk_create(
                [
                    Hold(
                        deal=deal,
                        ticket=t.id,
                        source="queue",
                        cart_id=carts[t.id],
                        customer_key=t.who,
                        quantity=q,
                        expires_at=expires,
                        created_at=at,
                    )
                    for t, q in plan
                ]
            )
            _hold_lines(deal, [(h.cart_id, h.quantity, h.pk) for h in holds])
            taken = Deal.objects.filter(pk=deal_id).update(held=F("held") + sum(q for _, q in plan))
            assert taken == 1
            done = [
                (
                    h.ticket,
                    {"cart_id": h.cart_id, "hold": h.pk, "expires_at": h.expires_at.isoformat()},
                )
                for h in holds
            ]
    for row in Hold.objects.filter(pk__in=list(earlier.values())).values(
        "ticket", "cart_id", "pk", "expires_at"
    ):
        done.append(
            (
                row["ticket"],
                {
                    "cart_id": row["cart_id"],
                    "hold": row["pk"],
                    "expires_at": row["expires_at"].isoformat(),
                },
            )
        )
    room.update_many(deal_id, done, state="admitted", only_from="waiting")
    return len(done)


def _close_line(deal_id: int) -> int:
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
    return _to_sold_out_many(deal, moved)


def _take_units(deal_id: int, quantity: int) -> bool:
    return (
        Deal.objects.filter(
            pk=deal_id, sold__lte=F("units") - F("held") - F("released_units") - quantity
        ).update(held=F("held") + quantity)
        == 1
    )


def _take_up_to(deal_id: int, quantity: int) -> int:
    """Hold as many of ``quantity`` units as are free (the last unit goes to the next person
    even if they asked for two): how many were taken, 0 if none is free."""
    for q in range(quantity, 0, -1):
        if _take_units(deal_id, q):
            return q
    return 0


def _user_id(who: str) -> int | None:
    return int(who.split(":", 1)[1]) if who.startswith("user:") else None


def _hold_lines(deal: Deal, rows: list[tuple[str, int, int]]) -> None:
    """Put held units into carts (``(cart_id, quantity, hold_id)``) as lines at the deal price
    that name their hold (a regular line of the same item in the cart becomes the held one, and
    the hold remembers how many regular units it took the place of: the cart says so)."""
    from warenhaus.checkout.models import CartLine

    existing = {
        cart_id: (pk, qty, held)
        for cart_id, pk, qty, held in CartLine.objects.filter(
            cart_id__in=[r[0] for r in rows], variant_id=deal.variant_id
        ).values_list("cart_id", "pk", "quantity", "deal_hold_id")
    }
    # a line whose hold has ended is a regular line now (at the regular price)
    live = set(
        Hold.objects.filter(
            pk__in=[v[2] for v in existing.values() if v[2]], status=HoldStatus.ACTIVE
        ).values_list("pk", flat=True)
    )
    for cart_id, quantity, hold_id in rows:
        if cart_id in existing:
            pk, before, held_before = existing[cart_id]
            CartLine.objects.filter(pk=pk).update(
                quantity=quantity, price_when_added=deal.deal_price, deal_hold_id=hold_id
            )
            if (
                held_before not in live
            ):  # nothing disappears silently: the cart names the regular units replaced
                Hold.objects.filter(pk=hold_id).update(replaced_quantity=before)
    CartLine.objects.bulk_create(
        [
            CartLine(
                cart_id=cart_id,
                variant_id=deal.variant_id,
                quantity=quantity,
                price_when_added=deal.deal_price,
                deal_hold_id=hold_id,
            )
            for cart_id, quantity, hold_id in rows
            if cart_id not in existing
        ]
    )


def _carts_for(tickets: list) -> dict[str, str]:
    """The cart each ticket's held units go into (ticket id -> cart id): the one the shopper
    named when queueing if it is still open and theirs, else their open cart, else a new one;
    never one cart for two tickets."""
    from warenhaus.checkout.models import Cart, CartStatus

    wanted = {t.id: (t.data or {}).get("cart_id") or "" for t in tickets}
    open_carts = dict(
        Cart.objects.filter(
            pk__in=[w for w in wanted.values() if w], status=CartStatus.OPEN
        ).values_list("pk", "user_id")
    )
    out: dict[str, str] = {}
    for t in tickets:
        w = wanted[t.id]
        if w in open_carts and open_carts[w] in (None, _user_id(t.who)) and w not in out.values():
            out[t.id] = w
    users = {_user_id(t.who) for t in tickets if t.id not in out} - {None}
    theirs: dict[int, str] = {}
    for pk, uid in (
        Cart.objects.filter(user_id__in=users, status=CartStatus.OPEN)
        .order_by("user_id", "-updated_at")
        .values_list("pk", "user_id")
    ):
        theirs.setdefault(uid, pk)
    taken = set(out.values())
    new = []
    for t in tickets:
        if t.id in out:
            continue
        pk = theirs.get(_user_id(t.who))
        if pk is None or pk in taken:
            cart = Cart(user_id=_user_id(t.who))
            new.append(cart)
            pk = cart.pk
        out[t.id] = pk
        taken.add(pk)
    Cart.objects.bulk_create(new)
    return out


# --- holds ending ------------------------------------------------------------------------------


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
        if hold.source == "waitlist":
            WaitlistEntry.objects.filter(
                deal_id=hold.deal_id, token=hold.ticket, status=WaitlistStatus.OFFERED
            ).update(status=WaitlistStatus.LAPSED)
    _forget(hold.deal_id)
    if hold.source == "queue":
        waiting_room().update(
            hold.deal_id,
            hold.ticket,
            state="expired" if status == HoldStatus.EXPIRED else "left",
            only_from="admitted",
        )
    _after_units_returned(hold.deal_id, at=at)
    return True


def _after_units_returned(deal_id: int, *, at: datetime) -> None:
    """Units came back: the queue's next people first (paced), then the wait list. The
    worker's admitter does that in its next round; without one, it is done here."""
    if admitter_alive(deal_id):
        return
    deal = Deal.objects.get(pk=deal_id)
    if state_of(deal, at) != "live" or deal.left <= 0:
        return
    room = waiting_room()
    if room.first_waiting(deal.pk, 1):
        # the waiting room may live outside the database: admit once the units are really back
        transaction.on_commit(lambda: admit_due(deal_id, at=now()))
    else:
        offer_to_waitlist(deal, at=at)


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
            _admitter_cache[pk] = (time.monotonic(), True)
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
        released += _release_rest(deal)
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


def _release_rest(deal: Deal) -> int:
    """After the end: what nobody bought or holds goes back to regular stock (holds taken
    before the end are honoured until their deadline, then come back here)."""
    from warenhaus.inventory import services as inventory

    with transaction.atomic():
        d = Deal.objects.select_for_update(no_key=True).get(pk=deal.pk)
        free = d.units - d.sold - d.held - d.released_units
        if free <= 0:
            return 0
        Deal.objects.filter(pk=d.pk).update(released_units=F("released_units") + free)
        inventory.release(variant_id=d.variant_id, quantity=free)
    _forget(deal.pk)
    return free


# --- the wait list ----------------------------------------------------------------------------


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
    """``who``'s place on the wait list, new (made ``at``, in the order of ``arrival``) unless they have one:
    whoever was first keeps theirs (no error to recover from). One statement by hand when the
    place is new: in a rush everyone who comes after the last unit is held gets here."""
    qn = connection.ops.quote_name
    columns, values = _entry_values(
        deal_id, who=who, email=email, quantity=quantity, language=language, at=at, arrival=arrival
    )
    row = _fetch_one(
        f"INSERT INTO {qn(WaitlistEntry._meta.db_table)} ({', '.join(map(qn, columns))}) "  # noqa: S608 - names from the model, values bound
        f"VALUES ({', '.join(['%s'] * len(columns))}) ON CONFLICT ({qn('deal_id')}, {qn('who')}) DO NOTHING "
        f"RETURNING {', '.join(map(qn, _ENTRY_FIELDS))}",
        values,
    )
    return _waitlist_entry_of(deal_id, who) if row is None else _entry_from_row(row)


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


def _new_waitlist_place(
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

    One statement for what a sold-out rush asks thousands of times: the household's usage, the
    insert, and the count of those ahead who joined since this process's snapshot of the wait
    list (:func:`_waitlist_place`; three round trips before)."""
    qn = connection.ops.quote_name
    table = qn(WaitlistEntry._meta.db_table)
    line = _waitlist_ranks.line(deal.pk, load=lambda: _waiting_places(deal.pk))
    newest = _waitlist_ranks.newest(deal.pk)
    columns, values = _entry_values(
        deal.pk, who=who, email=email, quantity=quantity, language=language, at=at, arrival=arrival
    )
    sql = f"INSERT INTO {table} ({', '.join(map(qn, columns))}) SELECT {', '.join(['%s'] * len(columns))} "  # noqa: S608 - names from the model, values bound
    params = list(values)
    if household:
        usage = qn(HouseholdUsage._meta.db_table)
        keys = household_keys(who, email)
        sql += (
            f"WHERE NOT EXISTS (SELECT 1 FROM {usage} AS u WHERE u.{qn('deal_id')} = %s AND u.{qn('key')} IN ({', '.join(['%s'] * len(keys))}) "
            f"AND u.{qn('max_units')} - u.{qn('units')} < %s) "
        )
        params += [deal.pk, *keys, quantity]
    else:
        sql += "WHERE 1 = 1 "  # SQLite reads ON CONFLICT after an INSERT ... SELECT only behind a WHERE
    mine, theirs = (
        f"({table}.{qn('order_key')}, {table}.{qn('id')})",
        f"(ahead.{qn('order_key')}, ahead.{qn('id')})",
    )
    ahead = (
        f"SELECT COUNT(*) FROM {table} AS ahead WHERE ahead.{qn('deal_id')} = {table}.{qn('deal_id')} "
        f"AND ahead.{qn('status')} = %s AND {theirs} < {mine}"
    )
    params.append(WaitlistStatus.WAITING.value)
    if newest is not None:  # those who joined after the snapshot (see _newcomers_ahead)
        ahead += f" AND ahead.{qn('id')} > %s"
        params.append(newest)
    sql += (
        f"ON CONFLICT ({qn('deal_id')}, {qn('who')}) DO NOTHING "
        f"RETURNING {', '.join(f'{table}.{qn(f)}' for f in _ENTRY_FIELDS)}, ({ahead})"
    )
    row = _fetch_one(sql, params)
    if row is None:
        return None
    entry = _entry_from_row(row[:-1])
    _waitlist_cache[deal.pk] = (time.monotonic(), True)
    return _entry_json(
        entry, position=bisect.bisect_left(line, (entry.order_key, entry.id)) + row[-1] + 1
    )


def _waiting_places(deal_id: int) -> list[tuple[int, int]]:
    return list(
        WaitlistEntry.objects.filter(deal_id=deal_id, status=WaitlistStatus.WAITING)
        .order_by("order_key", "id")
        .values_list("order_key", "id")
    )


def _entry_json(entry: WaitlistEntry, *, position: int | None = None) -> dict:
    if position is None and entry.status == WaitlistStatus.WAITING:
        position = _waitlist_place(entry.deal_id, (entry.order_key, entry.id))
    return {
        "entry": entry.token,
        "status": entry.status,
        "position": position,
        "quantity": entry.quantity,
    }


def waitlist_status(*, deal_id, token: str) -> dict:
    entry = WaitlistEntry.objects.filter(
        deal_id=cached_deal(deal_id).pk, token=str(token or "")[:64]
    ).first()
    if entry is None:
        raise NotFound("No such wait-list place.", code="waitlist_entry_not_found")
    out = _entry_json(entry)
    if entry.status == WaitlistStatus.OFFERED:
        hold = Hold.objects.filter(deal_id=entry.deal_id, ticket=entry.token).first()
        if hold is not None:
            out["cart_id"] = hold.cart_id
            out["hold"] = {
                "quantity": hold.quantity,
                "expires_at": hold.expires_at.isoformat(),
                "status": hold.status,
            }
            if (
                hold.status == HoldStatus.ACTIVE and hold.expires_at <= now()
            ):  # past its deadline, before the sweep ends it
                out["status"] = WaitlistStatus.LAPSED.value
                out["hold"]["status"] = HoldStatus.EXPIRED.value
    return out


def cancel_deal(*, deal_id, actor, reason: str, source: str = "api") -> Deal:
    """Stop a deal: nobody new is let in or offered anything; holds already given are honoured
    until their deadline; the rest of the contingent goes back to stock at the next sweep."""
    reason = parsing.reason(reason)
    with transaction.atomic():
        deal = Deal.objects.select_for_update(no_key=True).filter(pk=get_deal(deal_id).pk).first()
        if deal.cancelled_at is None:
            deal.cancelled_at = now()
            deal.save(update_fields=["cancelled_at"])
            audit.record(
                actor=actor,
                action="deal.cancel",
                obj=deal,
                after={"sold": deal.sold, "held": deal.held},
                reason=reason,
                source=source,
            )
    _forget(deal.pk)
    _release_rest(deal)
    return get_deal(deal.pk)


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
    quantity = _whole(quantity, "quantity", low=1, high=99)
    if not email:
        raise ValidationFailed(
            "The wait list needs an e-mail address to tell you when a unit is free.",
            code="email_required",
        )
    if quantity > deal.limit_per_customer:
        raise Conflict(
            f"At most {deal.limit_per_customer} per customer.",
            code="limit_per_customer",
            limit=deal.limit_per_customer,
            reason="quantity",
        )
    state = state_of(deal, at)
    if state in ("ended", "cancelled"):
        raise Conflict("This deal is over.", code="deal_ended")
    if state == "scheduled" or (state == "live" and deal.left > 0 and not _waitlist_open(deal.pk)):
        # the wait list is for when nothing is free: a place on it closes the line to everyone
        # who comes later (:func:`_admit_batch`), so while units are free it would turn them away.
        # Once someone waits on it, the line is closed already (and those it turned away,
        # without an address then, may ask for a place)
        raise Conflict(
            "Units of this deal are still free: please join the queue.", code="deal_not_sold_out"
        )
    if deal.sold:  # nobody waits for a unit their household may not buy (as in the queue)
        _check_usage(deal, household_keys(who, email), quantity)
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
        _waitlist_cache[deal.pk] = (time.monotonic(), True)
    return _entry_json(entry)


def offer_to_waitlist(deal: Deal, *, at: datetime | None = None) -> int:
    """Offer free units to the wait list in order, at the deal price, for ``offer_minutes``:
    a hold in a cart of their own and a mail through the outbox. Returns offers made."""
    from warenhaus.notifications.services import enqueue_mail

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
            quantity = _take_up_to(deal.pk, entry.quantity) if entry is not None else 0
            if not quantity:
                _forget(deal.pk)
                _waitlist_changed(deal.pk)
                return made
            cart_id = _carts_for(
                [
                    TicketInfo(
                        id=entry.token,
                        deal_id=deal.pk,
                        who=entry.who,
                        quantity=quantity,
                        state="",
                        order_key=0,
                        joined_at=0.0,
                    )
                ]
            )[entry.token]
            hold = Hold.objects.create(
                deal=deal,
                ticket=entry.token,
                source="waitlist",
                cart_id=cart_id,
                customer_key=entry.who,
                quantity=quantity,
                expires_at=at + timedelta(minutes=deal.offer_minutes),
                created_at=at,
            )
            _hold_lines(deal, [(cart_id, quantity, hold.pk)])
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


# --- checkout and cancellation -------------------------------------------------------------------


def holds_by_id(hold_ids) -> dict[int, dict]:
    """For the cart: each hold's state, price and deadline (one query)."""
    rows = Hold.objects.filter(pk__in=list(hold_ids)).values(
        "pk", "status", "expires_at", "quantity", "deal__deal_price", "deal_id", "replaced_quantity"
    )
    return {r["pk"]: r for r in rows}


def hold_is_live(row: dict, at: datetime | None = None) -> bool:
    return row["status"] == HoldStatus.ACTIVE and row["expires_at"] > (at or now())


def convert_holds(
    *,
    order,
    hold_ids: list[int],
    email: str,
    user_id,
    shipping_address: dict,
    payment_fingerprint: str = "",
):
    """Inside the checkout's transaction: the held units become sold, counted against the
    household: the customer, the shipping address and the payment instrument (the gateway's
    fingerprint of the card, when the method has one). Refuses ``hold_expired`` if a hold ran
    out meanwhile, and ``limit_per_customer`` (with the reason) if the household has had its
    share.

    Returns what the caller runs as the transaction's last step: moving the units from ``held``
    to ``sold`` on the deal's row. That row is every buyer's; its lock lasts from the update to
    the commit, so the update comes when nothing else is left to do (in a rush, holding it
    through the rest of the order serialised the checkouts and tied up the server's threads).
    The hold is locked and converted already, so nobody else can move those units meanwhile."""
    at = now()
    settle: dict[int, int] = {}
    for hold_id in sorted(hold_ids):
        # the hold only: locking the deal row too (FOR UPDATE) would stop every join and poll that
        # writes a row pointing at the deal until the checkout commits
        hold = Hold.objects.select_for_update(of=("self",)).select_related("deal").get(pk=hold_id)
        if not hold_is_live({"status": hold.status, "expires_at": hold.expires_at}, at):
            raise Conflict(
                "The deal price was held for you until its deadline, which has passed.",
                code="hold_expired",
                expired_at=hold.expires_at.isoformat(),
            )
        keys = [
            hold.customer_key,
            f"user:{user_id}" if user_id else f"email:{email.lower()}",
            address_key(shipping_address),
        ]
        if payment_fingerprint:
            keys.append("payment:" + hashlib.sha256(payment_fingerprint.encode()).hexdigest()[:32])
        _count_household(
            hold.deal,
            keys,
            hold.quantity,
            why={
                "payment": f"This card was already used for this deal (at most {hold.deal.limit_per_customer} per household).",
                "address": f"Another order of this deal goes to the same address (at most {hold.deal.limit_per_customer} per household).",
                "user": f"You already have {hold.deal.limit_per_customer} of this deal (at most {hold.deal.limit_per_customer} per customer).",
                "email": f"This e-mail address already has {hold.deal.limit_per_customer} of this deal (at most {hold.deal.limit_per_customer} per customer).",
            },
        )
        Hold.objects.filter(pk=hold.pk).update(
            status=HoldStatus.CONVERTED, ended_at=at, order=order
        )
        settle[hold.deal_id] = settle.get(hold.deal_id, 0) + hold.quantity
        Sale.objects.create(
            deal_id=hold.deal_id,
            order=order,
            hold=hold,
            quantity=hold.quantity,
            keys=sorted(set(keys)),
            created_at=at,
        )
        if hold.source == "waitlist":
            WaitlistEntry.objects.filter(deal_id=hold.deal_id, token=hold.ticket).update(
                status=WaitlistStatus.BOUGHT
            )
        _forget(hold.deal_id)

    def settle_counters() -> None:
        for deal_id, quantity in sorted(settle.items()):
            n = Deal.objects.filter(pk=deal_id, held__gte=quantity).update(
                held=F("held") - quantity, sold=F("sold") + quantity
            )
            assert n == 1, "a converted hold's units were not held"

    return settle_counters


def on_orders_cancelled(order_ids) -> int:
    """Inside the cancellation's transaction, after the order's stock was released: units of a
    live deal go back into its contingent (allocated again) for the next person; after the end
    they stay with regular stock. The household may buy again."""
    from warenhaus.inventory import services as inventory

    sales = list(
        Sale.objects.select_for_update(of=("self",))
        .filter(order_id__in=list(order_ids), returned_at__isnull=True)
        .select_related("deal")
    )
    at = now()
    live_deals = set()
    for sale in sales:
        deal = sale.deal
        if state_of(deal, at) in ("live", "sold_out"):
            inventory.allocate(variant_id=deal.variant_id, quantity=sale.quantity)
            Deal.objects.filter(pk=deal.pk).update(sold=F("sold") - sale.quantity)
            live_deals.add(deal.pk)
        else:
            Deal.objects.filter(pk=deal.pk).update(
                sold=F("sold") - sale.quantity, released_units=F("released_units") + sale.quantity
            )
        _uncount_household(deal.pk, sale.keys, sale.quantity)
        Sale.objects.filter(pk=sale.pk).update(returned_at=at)
    for sale in sales:
        _forget(sale.deal_id)
    for deal_id in live_deals:
        _after_units_returned(deal_id, at=at)
    return len(sales)


def deal_json(deal: Deal, *, at: datetime | None = None) -> dict:
    from warenhaus.core.money import money_json

    at = at or now()
    return {
        "id": deal.pk,
        "sku": deal.variant.sku,
        "title": deal.variant.display_title
        if hasattr(deal.variant, "display_title")
        else deal.variant.sku,
        "price": money_json(deal.deal_price),
        "regular_price": money_json(deal.variant.price),
        "lowest_price_30_days": money_json(deal.lowest_price_30_days),
        "units": deal.units,
        "units_left": deal.left,
        "sold": deal.sold,
        "held": deal.held,
        "state": state_of(deal, at),
        "starts_at": deal.starts_at.isoformat(),
        "ends_at": deal.ends_at.isoformat(),
        "starts_in_seconds": max(0, int((deal.starts_at - at).total_seconds())),
        "limit_per_customer": deal.limit_per_customer,
        "hold_minutes": deal.hold_minutes,
    }
