"""Reading the audit trail (filters for the console)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from .models import AuditEntry


def start_of_day(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def day_range(
    day_from: date | None, day_to: date | None
) -> tuple[datetime | None, datetime | None]:
    """Inclusive calendar days in the shop's time zone -> [from, to) instants."""
    return (
        start_of_day(day_from) if day_from else None,
        start_of_day(day_to + timedelta(days=1)) if day_to else None,
    )


def audit_entries(
    *,
    actor_email: str = "",
    action: str = "",
    object_type: str = "",
    object_id: str = "",
    day_from: date | None = None,
    day_to: date | None = None,
) -> QuerySet[AuditEntry]:
    qs = AuditEntry.objects.all().order_by("-at", "-id")
    if actor_email:
        qs = qs.filter(actor_email__icontains=actor_email.strip()[:254])
    if action:
        qs = qs.filter(action__startswith=action.strip()[:80])
    if object_type:
        qs = qs.filter(object_type=object_type.strip()[:60])
    if object_id:
        qs = qs.filter(object_id=object_id.strip()[:120])
    start, end = day_range(day_from, day_to)
    if start:
        qs = qs.filter(at__gte=start)
    if end:
        qs = qs.filter(at__lt=end)
    return qs


def audit_actions() -> list[str]:
    return list(
        AuditEntry.objects.order_by("action").values_list("action", flat=True).distinct()[:200]
    )


def audit_object_types() -> list[str]:
    return list(
        AuditEntry.objects.order_by("object_type")
        .values_list("object_type", flat=True)
        .distinct()[:100]
    )
