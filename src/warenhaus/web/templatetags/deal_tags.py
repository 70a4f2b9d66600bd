"""Template helpers of the flash-deal pages: deadlines given as ISO strings (the services' JSON
shape) as times of day and as seconds left for the countdowns, and the deals on now for the
home page's teaser."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils.dateparse import parse_datetime

from warenhaus.core.clock import now

register = template.Library()


@register.filter
def as_datetime(value):
    """An ISO 8601 string (or a datetime) as an aware datetime; None if it is neither."""
    if isinstance(value, datetime):
        return value
    return parse_datetime(value) if isinstance(value, str) and value else None


@register.filter
def seconds_until(value) -> int:
    """Whole seconds from now until ``value`` (never negative): the base of a countdown."""
    when = as_datetime(value)
    return max(0, int((when - now()).total_seconds())) if when else 0


@register.filter
def clock(seconds) -> str:
    """Seconds as ``M:SS`` or ``H:MM:SS`` (what a countdown shows before its script runs)."""
    try:
        s = max(0, int(seconds))
    except (TypeError, ValueError):
        return ""
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@register.simple_tag
def live_deals(limit: int = 3) -> list[dict]:
    """Deals running now or starting later, soonest first, with their shopper-facing state."""
    from warenhaus.deals import selectors
    from warenhaus.deals.models import Deal

    from ..deals_pages import deal_row

    return [
        deal_row(d)
        for d in selectors.current(Deal.objects.select_related("variant__product"))[:limit]
    ]


@register.filter
def minutes_up(seconds) -> int:
    """Seconds as whole minutes, rounded up (an estimated wait is never shown too short)."""
    try:
        return max(1, -(-int(seconds) // 60))
    except (TypeError, ValueError):
        return 1
