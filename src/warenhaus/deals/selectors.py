"""Reading deals: what is on now, and the live dashboard staff watch during a rush."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count
from django.db.models.functions import TruncMinute

from warenhaus.core.clock import now

from .models import Deal, Hold, HoldStatus, Sale, WaitlistEntry, WaitlistStatus
from .services import deal_json
from .waiting_room import TicketState, waiting_room


def current(qs=None):
    """Deals not yet over: running, or starting later; soonest first."""
    qs = qs if qs is not None else Deal.objects.all()
    return qs.filter(ends_at__gt=now(), cancelled_at__isnull=True).order_by("starts_at", "id")


def _per_minute(qs, field: str) -> dict[str, int]:
    rows = (
        qs.annotate(minute=TruncMinute(field))
        .values("minute")
        .annotate(n=Count("pk"))
        .order_by("minute")
    )
    return {r["minute"].isoformat(): r["n"] for r in rows}


def dashboard(deal: Deal) -> dict:
    at = now()
    holds = Hold.objects.filter(deal=deal)
    room = waiting_room().counts(deal.pk)
    last_minute = holds.filter(created_at__gte=at - timedelta(minutes=1)).count()
    admitted = _per_minute(holds, "created_at")
    sold = _per_minute(Sale.objects.filter(deal=deal), "created_at")
    ended = _per_minute(
        holds.filter(status__in=[HoldStatus.EXPIRED, HoldStatus.RELEASED]), "ended_at"
    )
    minutes = sorted(set(admitted) | set(sold) | set(ended))
    waitlist = {
        r["status"]: r["n"]
        for r in WaitlistEntry.objects.filter(deal=deal)
        .values("status")
        .annotate(n=Count("pk"))
        .order_by()
    }
    return {
        "deal": deal_json(deal, at=at),
        "queue": room,
        "queue_length": room.get(TicketState.WAITING, 0),
        "admitted": holds.count(),
        "held": deal.held,
        "sold": deal.sold,
        "left": deal.left,
        "waitlist": {
            status.value: waitlist.get(status, 0)
            for status in (
                WaitlistStatus.WAITING,
                WaitlistStatus.OFFERED,
                WaitlistStatus.BOUGHT,
                WaitlistStatus.LAPSED,
            )
        },
        "admission_rate_per_minute": last_minute,
        "pace_per_minute": deal.admissions_per_minute,
        "series": [
            {
                "minute": m,
                "admitted": admitted.get(m, 0),
                "sold": sold.get(m, 0),
                "returned": ended.get(m, 0),
            }
            for m in minutes
        ],
    }
