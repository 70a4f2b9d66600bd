"""Giving back what cancelled orders' redemptions counted, for one order or thousands at once.

Called inside the cancellation's transaction (:mod:`warenhaus.orders.services`). Only campaigns
that say so (``release_redemption_on_cancel``) get their counters back; each redemption is
released at most once (``released_at``). Counters change in the same order as when they were
taken (campaign -> code -> customer usage), with one UPDATE per group rather than per order, so
that a remediation of 50,000 orders costs a few statements per chunk.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.db.models import F, Value
from django.db.models.functions import Greatest

from warenhaus.core.clock import now

from .models import Campaign, Code, CustomerUsage, Redemption


def _less(field: str, n: int):
    return Greatest(F(field) - n, Value(0))


def release_for_orders(order_ids, *, at=None) -> int:
    """Release the not yet released redemptions of these orders; returns how many."""
    at = at or now()
    reds = list(
        Redemption.objects.filter(
            order_id__in=list(order_ids),
            released_at__isnull=True,
            campaign__release_redemption_on_cancel=True,
        ).values("pk", "campaign_id", "code_id", "redeemer_key", "amount")
    )
    if not reds:
        return 0
    per_campaign: dict[int, list] = defaultdict(lambda: [0, Decimal("0")])
    per_code: dict[int, int] = defaultdict(int)
    per_usage: dict[tuple[int, str], int] = defaultdict(int)
    for r in reds:
        per_campaign[r["campaign_id"]][0] += 1
        per_campaign[r["campaign_id"]][1] += r["amount"]
        per_code[r["code_id"]] += 1
        per_usage[(r["campaign_id"], r["redeemer_key"])] += 1
    for cid in sorted(per_campaign):
        n, amount = per_campaign[cid]
        Campaign.objects.filter(pk=cid).update(
            redeemed_count=_less("redeemed_count", n),
            spent_amount=Greatest(F("spent_amount") - amount, Value(Decimal("0"))),
        )
    codes_by_n: dict[int, list[int]] = defaultdict(list)
    for code_id, n in per_code.items():
        codes_by_n[n].append(code_id)
    for n, ids in sorted(codes_by_n.items()):
        Code.objects.filter(pk__in=sorted(ids)).update(uses=_less("uses", n))
    usage_groups: dict[tuple[int, int], list[str]] = defaultdict(list)
    for (cid, key), n in per_usage.items():
        usage_groups[(cid, n)].append(key)
    for (cid, n), keys in sorted(usage_groups.items()):
        CustomerUsage.objects.filter(campaign_id=cid, redeemer_key__in=sorted(keys)).update(
            uses=_less("uses", n)
        )
    Redemption.objects.filter(pk__in=[r["pk"] for r in reds], released_at__isnull=True).update(
        released_at=at
    )
    return len(reds)
