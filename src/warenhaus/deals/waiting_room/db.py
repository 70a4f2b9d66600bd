"""The embedded waiting room: tickets are rows of :class:`warenhaus.deals.models.Ticket`; the
admitter's lease is a row lock taken with ``SKIP LOCKED`` semantics emulated by a conditional
UPDATE on a lease column, so it works on SQLite too.

Hot paths: a join is one ``INSERT ... ON CONFLICT DO NOTHING`` (a second statement only for
someone who already has a ticket); the position a polling shopper is shown comes from a
per-process snapshot of the line's order, at most ``DEALS_CACHE_SECONDS`` old (an exact
``COUNT`` over the line costs O(position) per poll), dropped whenever this process changes a
ticket's state (:mod:`warenhaus.deals.ranks`)."""

from __future__ import annotations

import time

from django.db import connection, transaction
from django.db.models import Count, Q

from .. import sql
from ..models import AdmitterLease, Ticket
from ..ranks import RankSnapshot
from .base import STATES, TicketInfo, TicketState, WaitingRoom, new_ticket_id, order_key


def _info(row) -> TicketInfo:
    return TicketInfo(
        id=row.id,
        deal_id=row.deal_id,
        who=row.who,
        quantity=row.quantity,
        state=row.state,
        order_key=row.order_key,
        joined_at=row.joined_at,
        data=dict(row.data or {}),
    )


class DatabaseWaitingRoom(WaitingRoom):
    name = "db"

    def __init__(self):
        self._ranks = RankSnapshot()

    def join(self, deal_id, who, quantity, *, before_start, now, data=None):
        row = Ticket(
            id=new_ticket_id(),
            deal_id=deal_id,
            who=who,
            quantity=quantity,
            state=TicketState.WAITING,
            order_key=order_key(before_start=before_start, now=now),
            joined_at=now,
            data=dict(data or {}),
        )
        fields = [Ticket._meta.get_field(n) for n in sql.TICKET_FIELDS]
        created = sql.insert_ticket(
            [f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields]
        )
        if created:
            return _info(row), True
        return _info(Ticket.objects.get(deal_id=deal_id, who=who)), False

    def ticket_of(self, deal_id, who):
        row = Ticket.objects.filter(deal_id=deal_id, who=who).first()
        return None if row is None else _info(row)

    def get(self, deal_id, ticket_id):
        ticket_id = str(ticket_id)
        if not ticket_id or len(ticket_id) > 64:
            return None
        row = sql.ticket_row(int(deal_id), ticket_id)
        if row is None:
            return None
        data = Ticket._meta.get_field("data").from_db_value(row[5], None, connection)
        return TicketInfo(
            id=ticket_id,
            deal_id=int(deal_id),
            who=row[0],
            quantity=row[1],
            state=row[2],
            order_key=row[3],
            joined_at=row[4],
            data=dict(data or {}),
        )

    def position(self, deal_id, ticket):
        if ticket.state != TicketState.WAITING:
            return None
        # one query: the waiting up to and including the ticket, and whether it is still waiting
        # (``ticket`` may be stale: once it left the line it has no place, as in Redis)
        row = (
            Ticket.objects.filter(deal_id=deal_id, state=TicketState.WAITING)
            .filter(
                Q(order_key__lt=ticket.order_key) | Q(order_key=ticket.order_key, id__lte=ticket.id)
            )
            .aggregate(upto=Count("pk"), me=Count("pk", filter=Q(pk=ticket.id)))
        )
        return row["upto"] if row["me"] else None

    def position_estimate(self, deal_id, ticket):
        if ticket.state != TicketState.WAITING:
            return None
        line = Ticket.objects.filter(deal_id=deal_id, state=TicketState.WAITING)
        return self._ranks.place(
            deal_id,
            (ticket.order_key, ticket.id),
            count_between=lambda after, me: sql.waiting_between(deal_id, after, me),
            load=lambda: list(line.order_by("order_key", "id").values_list("order_key", "id")),
        )

    def forget_snapshots(self) -> None:
        self._ranks.forget()

    def _changed(self, deal_id) -> None:
        self._ranks.forget(deal_id)

    def first_waiting(self, deal_id, n):
        if n <= 0:
            return []
        return [
            _info(r)
            for r in Ticket.objects.filter(deal_id=deal_id, state=TicketState.WAITING).order_by(
                "order_key", "id"
            )[:n]
        ]

    def update(self, deal_id, ticket_id, *, state, data=None, only_from=None):
        with transaction.atomic():
            qs = Ticket.objects.select_for_update().filter(pk=ticket_id, deal_id=deal_id)
            if only_from is not None:
                qs = qs.filter(state=only_from)
            row = qs.first()
            if row is None:
                return False
            row.state = state
            if data:
                row.data = {**(row.data or {}), **data}
            row.save(update_fields=["state", "data"])
        self._changed(deal_id)
        return True

    def update_many(self, deal_id, changes, *, state, only_from=None):
        if not changes:
            return 0
        if not any(data for _, data in changes):
            # a state only (the line closed to the wait list: thousands at once): one statement
            qs = Ticket.objects.filter(deal_id=deal_id, pk__in=[tid for tid, _ in changes])
            n = (qs.filter(state=only_from) if only_from is not None else qs).update(state=state)
            self._changed(deal_id)
            return n
        n = 0
        with transaction.atomic():
            qs = Ticket.objects.select_for_update().filter(
                deal_id=deal_id, pk__in=[tid for tid, _ in changes]
            )
            if only_from is not None:
                qs = qs.filter(state=only_from)
            old = dict(qs.values_list("pk", "data"))
            for tid, data in changes:
                if tid not in old:
                    continue
                n += Ticket.objects.filter(pk=tid).update(
                    state=state, data={**(old[tid] or {}), **(data or {})}
                )
        self._changed(deal_id)
        return n

    def beat(self, deal_id, at):
        if not AdmitterLease.objects.filter(deal_id=deal_id).update(beat=at):
            AdmitterLease.objects.get_or_create(
                deal_id=deal_id, defaults={"owner": "", "until": 0.0, "beat": at}
            )

    def last_beat(self, deal_id):
        return (
            AdmitterLease.objects.filter(deal_id=deal_id).values_list("beat", flat=True).first()
            or None
        )

    def counts(self, deal_id):
        out = dict.fromkeys(STATES, 0)
        for row in (
            Ticket.objects.filter(deal_id=deal_id)
            .values("state")
            .annotate(n=Count("pk"))
            .order_by()
        ):
            out[row["state"]] = row["n"]
        return out

    def acquire(self, deal_id, owner, seconds):
        now = time.time()
        if (
            AdmitterLease.objects.filter(deal_id=deal_id)
            .filter(Q(until__lt=now) | Q(owner=""))
            .update(owner=owner, until=now + seconds)
            == 1
        ):
            return True
        AdmitterLease.objects.get_or_create(deal_id=deal_id, defaults={"owner": "", "until": 0.0})
        return (
            AdmitterLease.objects.filter(deal_id=deal_id)
            .filter(Q(until__lt=now) | Q(owner=""))
            .update(owner=owner, until=now + seconds)
            == 1
        )

    def release(self, deal_id, owner):
        AdmitterLease.objects.filter(deal_id=deal_id, owner=owner).update(owner="", until=0.0)

    def clear(self, deal_id):
        Ticket.objects.filter(deal_id=deal_id).delete()
        self._changed(deal_id)
        AdmitterLease.objects.filter(deal_id=deal_id).delete()
