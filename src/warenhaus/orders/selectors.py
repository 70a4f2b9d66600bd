"""Reading orders: the shopper's own, staff lists with filters, and the public shape."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from warenhaus.core.money import money_json

from .models import Order


def orders_of(user) -> QuerySet[Order]:
    return Order.objects.filter(user=user).prefetch_related("lines").order_by("-placed_at", "-id")


def staff_orders(
    *, status: str = "", q: str = "", placed_from=None, placed_to=None
) -> QuerySet[Order]:
    qs = Order.objects.all().prefetch_related("lines").order_by("-placed_at", "-id")
    if status:
        qs = qs.filter(status=status)
    if q:
        q = q.strip()[:100]
        qs = qs.filter(
            Q(number__icontains=q) | Q(email__icontains=q) | Q(lines__sku__iexact=q)
        ).distinct()
    if placed_from:
        qs = qs.filter(placed_at__gte=placed_from)
    if placed_to:
        qs = qs.filter(placed_at__lt=placed_to)
    return qs


def order_by_number(number: str) -> Order | None:
    return (
        Order.objects.filter(number=number).prefetch_related("lines", "events", "payments").first()
    )


def order_json(order: Order, *, with_history: bool = True, for_staff: bool = False) -> dict:
    """The public shape of an order. Reasons in the history are staff notes ("suspected
    fraud") and are shown to staff only; the customer sees what happened and when."""
    data = {
        "number": order.number,
        "status": order.status,
        "email": order.email,
        "channel": order.channel,
        "placed_at": order.placed_at.isoformat(),
        "shipping_address": order.shipping_address,
        "shipping_method": order.shipping_method,
        "payment_method": order.payment_method,
        "lines": [
            {
                "sku": line.sku,
                "title": line.title,
                "quantity": line.quantity,
                "unit_price": money_json(line.unit_price),
                "vat_rate": f"{line.vat_rate:.0f}",
                "line_total": money_json(line.line_total),
            }
            for line in order.lines.all()
        ],
        "totals": {
            "subtotal": money_json(order.subtotal),
            "discount": money_json(order.discount),
            "shipping": money_json(order.shipping),
            "vat": money_json(order.vat),
            "vat_breakdown": [
                {"rate": r["rate"], "amount": money_json(r["amount"])} for r in order.vat_breakdown
            ],
            "total": money_json(order.total),
        },
    }
    if with_history:
        data["history"] = [
            {
                "at": e.at.isoformat(),
                "from": e.from_status,
                "to": e.to_status,
                **({"reason": e.reason} if for_staff else {}),
            }
            for e in order.events.all()
        ]
        data["payments"] = [
            {"method": p.gateway, "status": p.status, "amount": money_json(p.amount)}
            for p in order.payments.all()
        ]
    return data


def order_counts_by_status() -> dict[str, int]:
    return dict(
        Order.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )


def daily_totals(*, days: int = 14, today=None) -> list[dict]:
    """Orders placed and their gross value per calendar day (shop time zone), oldest first,
    for the console chart. Cancelled orders are counted separately, not in the value."""
    from datetime import timedelta

    from django.db.models import Sum
    from django.db.models.functions import TruncDate
    from django.utils import timezone

    tz = timezone.get_current_timezone()
    today = today or timezone.localdate()
    first = today - timedelta(days=days - 1)
    start = timezone.make_aware(timezone.datetime.combine(first, timezone.datetime.min.time()), tz)
    rows = (
        Order.objects.filter(placed_at__gte=start)
        .annotate(day=TruncDate("placed_at", tzinfo=tz))
        .values("day", "status")
        .annotate(n=Count("id"), value=Sum("total"))
    )
    by_day = {
        first + timedelta(days=i): {
            "day": first + timedelta(days=i),
            "count": 0,
            "cancelled": 0,
            "value": 0,
        }
        for i in range(days)
    }
    for r in rows:
        slot = by_day.get(r["day"])
        if slot is None:
            continue
        if r["status"] == "cancelled":
            slot["cancelled"] += r["n"]
        else:
            slot["count"] += r["n"]
            slot["value"] += r["value"] or 0
    return list(by_day.values())
