"""What a remediation job acts on: the selector (which orders), the actions (what to do with
them) and the preview (what that would mean, before anything is done).

A selector names exactly one way of choosing orders, optionally within a time window:

- ``{"voucher_codes": ["SOMMER400", ...], "campaigns": [12]}``: orders that redeemed these codes
  or any code of these campaigns (orders that used other, genuine codes are not selected);
- ``{"sku": "LAP-15-SILVER", "unit_price_below": "100.00"}``: orders with a line of that SKU
  sold below the floor (the price typo);
- ``{"order_numbers": ["WH-...", ...]}``: exactly these orders;

plus ``placed_from`` / ``placed_to`` (ISO 8601 with offset, both inclusive). Codes are stored in
the job by their id and hint, never in clear.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.db.models.functions import Lower

from warenhaus.core import parsing
from warenhaus.core.errors import ValidationFailed
from warenhaus.core.money import ZERO, money_json
from warenhaus.orders.models import Order, OrderLine, OrderStatus
from warenhaus.orders.services import UNSHIPPED

MAX_CODES = 1000
MAX_NUMBERS = 100_000
SAMPLE_SIZE = 10
KINDS = ("voucher_codes", "campaigns", "sku", "order_numbers")
KNOWN_KEYS = {
    "voucher_codes",
    "campaigns",
    "sku",
    "unit_price_below",
    "order_numbers",
    "placed_from",
    "placed_to",
}
#: orders that no action changes any more
GONE = (OrderStatus.CANCELLED, OrderStatus.REFUNDED)
#: orders beyond cancel and hold: they left the warehouse
SENT_OFF = (OrderStatus.SHIPPED, OrderStatus.DELIVERED)
ACTIONS = ("cancel", "hold", "notify", "goodwill_voucher")


def _invalid(detail: str, **extra) -> ValidationFailed:
    return ValidationFailed(detail, code="invalid_selector", **extra)


def _time(raw, field: str):
    example = "2026-11-22T18:00:00+00:00"
    return parsing.aware_time(raw, field, optional=True, code="invalid_selector", example=example)


def _list(raw, field: str, limit: int) -> list:
    if not isinstance(raw, list) or not raw or len(raw) > limit:
        raise _invalid(f"{field} is a list of 1 to {limit} entries.", field=field)
    return raw


def normalise_selector(raw) -> dict:
    """Check a selector as a client sends it and return the form the job stores."""
    from warenhaus.promotions import codes as codelib
    from warenhaus.promotions.models import Campaign, Code

    if not isinstance(raw, dict):
        raise _invalid('selector is an object, e.g. {"voucher_codes": ["SOMMER400"]}.')
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise _invalid(f"Unknown selector field(s): {', '.join(unknown)}.", fields=unknown)
    given = [k for k in KINDS if raw.get(k) not in (None, "", [])]
    if "voucher_codes" in given and "campaigns" in given:
        given.remove("campaigns")  # codes and campaigns together are one kind: vouchers
    if len(given) != 1:
        raise _invalid(
            "Choose orders in exactly one way: voucher_codes/campaigns, sku with unit_price_below, or order_numbers."
        )
    out: dict = {}
    kind = given[0]
    if kind in ("voucher_codes", "campaigns"):
        codes = []
        for i, typed in enumerate(
            _list(raw["voucher_codes"], "voucher_codes", MAX_CODES)
            if raw.get("voucher_codes")
            else []
        ):
            plain = codelib.normalise(typed) if isinstance(typed, str) else ""
            row = (
                Code.objects.filter(digest=codelib.digest(plain))
                .values("pk", "hint", "campaign_id")
                .first()
                if plain and len(plain) <= 64
                else None
            )
            if row is None:
                raise ValidationFailed(
                    f"voucher_codes[{i}] is not a code of this shop.",
                    code="unknown_voucher_code",
                    index=i,
                )
            codes.append(
                {"id": row["pk"], "hint": f"…{row['hint']}", "campaign": row["campaign_id"]}
            )
        campaigns = []
        for i, cid in enumerate(
            _list(raw["campaigns"], "campaigns", MAX_CODES) if raw.get("campaigns") else []
        ):
            if (
                isinstance(cid, bool)
                or not isinstance(cid, int)
                or not Campaign.objects.filter(pk=cid).exists()
            ):
                raise ValidationFailed(
                    f"campaigns[{i}] is not a campaign of this shop.",
                    code="campaign_not_found",
                    index=i,
                )
            campaigns.append(cid)
        out["codes"] = sorted({c["id"]: c for c in codes}.values(), key=lambda c: c["id"])
        out["campaigns"] = sorted(set(campaigns))
    elif kind == "sku":
        sku = raw["sku"]
        if not isinstance(sku, str) or len(sku) > 64 or not sku.strip():
            raise _invalid("sku is a string of at most 64 characters.", field="sku")
        if raw.get("unit_price_below") in (None, ""):
            raise _invalid(
                "sku needs unit_price_below, the floor below which a sale was a mistake.",
                field="unit_price_below",
            )
        floor = parsing.amount(raw["unit_price_below"], "unit_price_below", allow_zero=False)
        out["sku"] = sku.strip()
        out["unit_price_below"] = str(floor)
    else:
        numbers = _list(raw["order_numbers"], "order_numbers", MAX_NUMBERS)
        if any(not isinstance(n, str) or len(n) > 20 for n in numbers):
            raise _invalid(
                "order_numbers are order numbers such as WH-7K3M9QX2.", field="order_numbers"
            )
        out["order_numbers"] = sorted({n.strip().upper() for n in numbers})
    start, end = (
        _time(raw.get("placed_from"), "placed_from"),
        _time(raw.get("placed_to"), "placed_to"),
    )
    if start and end and end < start:
        raise _invalid("placed_to is before placed_from.", field="placed_to")
    if start or end:
        out["placed_from"] = start.isoformat() if start else None
        out["placed_to"] = end.isoformat() if end else None
    return out


def normalise_actions(raw) -> dict:
    """``["cancel", "notify", {"goodwill_voucher": {"amount": "10.00"}}]`` (or the same as an
    object, ``{"cancel": true, "goodwill_voucher": {"amount": "10.00"}}``) ->
    ``{"cancel": bool, "hold": bool, "notify": bool, "goodwill_amount": "10.00" | None}``.
    A goodwill voucher reaches the customer in the notice, so it implies ``notify``."""
    chosen: dict = {}
    if isinstance(raw, dict):
        raw = [
            {k: v} if isinstance(v, dict) else k for k, v in raw.items() if v not in (False, None)
        ]
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed(
            "actions is a non-empty list of cancel, hold, notify, goodwill_voucher {amount}.",
            code="invalid_actions",
        )
    for entry in raw:
        if isinstance(entry, str):
            name, params = entry, {}
        elif isinstance(entry, dict) and "type" in entry:
            name, params = entry.get("type"), {k: v for k, v in entry.items() if k != "type"}
        elif isinstance(entry, dict) and len(entry) == 1:
            name, params = next(iter(entry.items()))
            params = params if isinstance(params, dict) else {"amount": params}
        else:
            raise ValidationFailed(
                'Each action is a name or {"goodwill_voucher": {"amount": "10.00"}}.',
                code="invalid_actions",
            )
        if name not in ACTIONS:
            raise ValidationFailed(
                f"Unknown action {name!r}; actions are {', '.join(ACTIONS)}.",
                code="invalid_actions",
                action=str(name)[:40],
            )
        chosen[name] = params
    if "cancel" in chosen and "hold" in chosen:
        raise ValidationFailed("Choose cancel or hold, not both.", code="conflicting_actions")
    amount = None
    if "goodwill_voucher" in chosen:
        raw_amount = chosen["goodwill_voucher"].get("amount")
        amount = parsing.amount(raw_amount, "goodwill_voucher.amount", allow_zero=False)
        if amount > settings.REMEDIATION_GOODWILL_MAX:
            raise ValidationFailed(
                f"A goodwill voucher is at most {settings.REMEDIATION_GOODWILL_MAX} EUR.",
                code="goodwill_too_large",
                maximum=str(settings.REMEDIATION_GOODWILL_MAX),
            )
    return {
        "cancel": "cancel" in chosen,
        "hold": "hold" in chosen,
        "notify": "notify" in chosen or amount is not None,
        "goodwill_amount": str(amount) if amount is not None else None,
    }


def orders_for(selector: dict):
    """The orders a stored selector names (a queryset, not yet evaluated)."""
    from warenhaus.promotions.models import Redemption

    qs = Order.objects.all()
    if "codes" in selector or "campaigns" in selector:
        q = Q(code_id__in=[c["id"] for c in selector.get("codes", [])]) | Q(
            campaign_id__in=selector.get("campaigns", [])
        )
        qs = qs.filter(pk__in=Redemption.objects.filter(q).values("order_id"))
    elif "sku" in selector:
        qs = qs.filter(
            pk__in=OrderLine.objects.filter(
                sku=selector["sku"], unit_price__lt=Decimal(selector["unit_price_below"])
            ).values("order_id")
        )
    else:
        qs = qs.filter(number__in=selector["order_numbers"])
    if selector.get("placed_from"):
        qs = qs.filter(placed_at__gte=selector["placed_from"])
    if selector.get("placed_to"):
        qs = qs.filter(placed_at__lte=selector["placed_to"])
    return qs


def affected_orders(qs, actions: dict):
    """Of the selected orders, those the actions change (and whose customers are told):
    unshipped ones for cancel/hold, every order not cancelled or refunded otherwise."""
    if actions["cancel"]:
        return qs.filter(status__in=UNSHIPPED)
    if actions["hold"]:
        return qs.filter(status__in=UNSHIPPED - {OrderStatus.ON_HOLD})
    return qs.exclude(status__in=GONE)


def count_customers(qs) -> int:
    """Customers: accounts by id, guests by e-mail address."""
    return (
        qs.filter(user__isnull=False).values("user_id").distinct().count()
        + qs.filter(user__isnull=True).values(e=Lower("email")).distinct().count()
    )


def _sum(qs) -> dict:
    agg = qs.aggregate(n=Count("pk"), total=Sum("total"), discount=Sum("discount"))
    return {
        "orders": agg["n"],
        "total": money_json(agg["total"] or ZERO),
        "discount": money_json(agg["discount"] or ZERO),
    }


def preview(selector: dict, actions: dict) -> dict:
    """What executing would mean, read from the database as it is now: a handful of aggregate
    queries, however many orders are selected."""
    qs = orders_for(selector)
    everything = _sum(qs)
    by_status = {
        row["status"]: row["n"]
        for row in qs.values("status").annotate(n=Count("pk")).order_by("status")
    }
    reachable = qs.filter(status__in=UNSHIPPED)
    affected = affected_orders(qs, actions)
    affected_sum = _sum(affected)
    customers_affected = count_customers(affected)
    out = {
        "orders": everything["orders"],
        "customers": count_customers(qs),
        "amounts": {"total": everything["total"], "discount": everything["discount"]},
        "by_status": by_status,
        "out_of_reach": sum(n for s, n in by_status.items() if s in SENT_OFF),
        "already_cancelled": sum(n for s, n in by_status.items() if s in GONE),
        "unshipped": reachable.count(),
        "affected": {
            "orders": affected_sum["orders"],
            "customers": customers_affected,
            "total": affected_sum["total"],
            "discount": affected_sum["discount"],
        },
        "sample": [
            {
                "number": o.number,
                "placed_at": o.placed_at.isoformat(),
                "status": o.status,
                "email": o.email,
                "channel": o.channel,
                "total": money_json(o.total),
                "discount": money_json(o.discount),
            }
            for o in qs.order_by("placed_at", "id")[:SAMPLE_SIZE]
        ],
    }
    if actions.get("goodwill_amount"):
        out["goodwill"] = {
            "vouchers": customers_affected,
            "amount_each": money_json(Decimal(actions["goodwill_amount"])),
            "at_most": money_json(Decimal(actions["goodwill_amount"]) * customers_affected),
        }
    if "order_numbers" in selector:
        found = (
            set(qs.values_list("number", flat=True))
            if everything["orders"] < len(selector["order_numbers"])
            else set(selector["order_numbers"])
        )
        missing = [n for n in selector["order_numbers"] if n not in found]
        out["not_found"] = missing[:100]
        out["not_found_count"] = len(missing)
    return out
