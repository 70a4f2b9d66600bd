"""Reads the pages need that the domain apps do not (yet) offer as selectors.

Each function here is a plain query without side effects. They belong in the owning domain's
``selectors.py``; they live here until they move (see the web README section of the report).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db.models import Count, QuerySet
from django.utils import timezone

from warenhaus.catalog.models import Category
from warenhaus.checkout.models import Cart, CartStatus
from warenhaus.core.models import AuditEntry
from warenhaus.orders.models import Order


def open_cart_of(user) -> Cart | None:
    """The shopper's open cart, without creating one (a page view must not write)."""
    if user is None or not user.is_authenticated:
        return None
    return Cart.objects.filter(user=user, status=CartStatus.OPEN).order_by("-updated_at").first()


def order_from_cart(cart_id: str) -> Order | None:
    """The order a cart became; used when a checkout form is submitted twice."""
    if not cart_id:
        return None
    return Order.objects.filter(cart_id=cart_id).order_by("-placed_at").first()


def category_by_slug(slug: str) -> Category | None:
    return Category.objects.filter(slug=slug).select_related("parent").prefetch_related("children").first()


def order_counts_by_status() -> dict[str, int]:
    return dict(Order.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))


def start_of_day(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def day_range(day_from: date | None, day_to: date | None) -> tuple[datetime | None, datetime | None]:
    """Inclusive calendar days in the shop's time zone -> [from, to) instants."""
    return (start_of_day(day_from) if day_from else None, start_of_day(day_to + timedelta(days=1)) if day_to else None)


def audit_entries(*, actor_email: str = "", action: str = "", object_type: str = "", object_id: str = "", day_from: date | None = None, day_to: date | None = None) -> QuerySet[AuditEntry]:
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
    return list(AuditEntry.objects.order_by("action").values_list("action", flat=True).distinct()[:200])


def audit_object_types() -> list[str]:
    return list(AuditEntry.objects.order_by("object_type").values_list("object_type", flat=True).distinct()[:100])
