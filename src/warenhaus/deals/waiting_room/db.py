"""The embedded waiting room: tickets are rows of :class:`warenhaus.deals.models.Ticket`; the
admitter's lease is a row lock taken with ``SKIP LOCKED`` semantics emulated by a conditional
UPDATE on a lease column, so it works on SQLite too."""

from __future__ import annotations

import time

from django.db import IntegrityError, transaction
from django.db.models import Count, Q

from .base import STATES, TicketInfo, WaitingRoom, new_ticket_id, order_key


def _info(row) -> TicketInfo:
    return TicketInfo(id=row.id, deal_id=row.deal_id, who=row.who, quantity=row.quantity, state=row.state,
                      order_key=row.order_key, joined_at=row.joined_at, data=dict(row.data or {}))


class DatabaseWaitingRoom(WaitingRoom):
    name = "db"

    def join(self, deal_id, who, quantity, *, before_start, now, data=None):
        from warenhaus.deals.models import Ticket

        existing = Ticket.objects.filter(deal_id=deal_id, who=who).first()
        if existing is not None:
            return _info(existing), False
        row = Ticket(id=new_ticket_id(), deal_id=deal_id, who=who, quantity=quantity, state="waiting",
                     order_key=order_key(before_start=before_start, now=now), joined_at=now, data=dict(data or {}))
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except IntegrityError:  # the same person joined at the same moment: theirs wins
            return _info(Ticket.objects.get(deal_id=deal_id, who=who)), False
        return _info(row), True

    def get(self, deal_id, ticket_id):
        from warenhaus.deals.models import Ticket

        row = Ticket.objects.filter(pk=str(ticket_id)[:64], deal_id=deal_id).first()
        return _info(row) if row else None

    def position(self, deal_id, ticket):
        from warenhaus.deals.models import Ticket

        if ticket.state != "waiting":
            return None
        # one query: the waiting up to and including the ticket, and whether it is still waiting
        # (``ticket`` may be stale: once it left the line it has no place, as in Redis)
        row = Ticket.objects.filter(deal_id=deal_id, state="waiting").filter(
            Q(order_key__lt=ticket.order_key) | Q(order_key=ticket.order_key, id__lte=ticket.id)
        ).aggregate(upto=Count("pk"), me=Count("pk", filter=Q(pk=ticket.id)))
        return row["upto"] if row["me"] else None

    def first_waiting(self, deal_id, n):
        from warenhaus.deals.models import Ticket

        if n <= 0:
            return []
        return [_info(r) for r in Ticket.objects.filter(deal_id=deal_id, state="waiting").order_by("order_key", "id")[:n]]

    def update(self, deal_id, ticket_id, *, state, data=None, only_from=None):
        from warenhaus.deals.models import Ticket

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
        return True

    def counts(self, deal_id):
        from warenhaus.deals.models import Ticket

        out = dict.fromkeys(STATES, 0)
        for row in Ticket.objects.filter(deal_id=deal_id).values("state").annotate(n=Count("pk")).order_by():
            out[row["state"]] = row["n"]
        return out

    def acquire(self, deal_id, owner, seconds):
        from warenhaus.deals.models import AdmitterLease

        now = time.time()
        AdmitterLease.objects.get_or_create(deal_id=deal_id, defaults={"owner": "", "until": 0.0})
        return AdmitterLease.objects.filter(deal_id=deal_id).filter(Q(until__lt=now) | Q(owner="")).update(owner=owner, until=now + seconds) == 1

    def release(self, deal_id, owner):
        from warenhaus.deals.models import AdmitterLease

        AdmitterLease.objects.filter(deal_id=deal_id, owner=owner).update(owner="", until=0.0)

    def clear(self, deal_id):
        from warenhaus.deals.models import AdmitterLease, Ticket

        Ticket.objects.filter(deal_id=deal_id).delete()
        AdmitterLease.objects.filter(deal_id=deal_id).delete()
