"""Reading deals: what is on now, and the live dashboard staff watch during a rush."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count
from django.db.models.functions import TruncMinute

from warenhaus.core.clock import now

from .models import Deal, Hold, Sale, WaitlistEntry
from .waiting_room import waiting_room


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
    from .services import deal_json

    at = now()
    holds = Hold.objects.filter(deal=deal)
    room = waiting_room().counts(deal.pk)
    last_minute = holds.filter(created_at__gte=at - timedelta(minutes=1)).count()
    admitted = _per_minute(holds, "created_at")
    sold = _per_minute(Sale.objects.filter(deal=deal), "created_at")
    ended = _per_minute(holds.filter(status__in=["expired", "released"]), "ended_at")
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
        "queue_length": room.get("waiting", 0),
        "admitted": holds.count(),
        "held": deal.held,
        "sold": deal.sold,
        "left": deal.left,
        "waitlist": {
            "waiting": waitlist.get("waiting", 0),
            "offered": waitlist.get("offered", 0),
            "bought": waitlist.get("bought", 0),
            "lapsed": waitlist.get("lapsed", 0),
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
