"""What one customer may hold of a flash deal at once: one turn per deal (README, "Each customer
has one turn per deal ... so nobody can hold the units again and again while others wait"), so
never more than the per-customer limit held and bought together."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from warenhaus.core.errors import DomainError

pytestmark = pytest.mark.django_db


def _live_deal(make_product, *, units: int, limit: int):
    from django.utils import timezone

    from warenhaus.deals import services

    variant = make_product(
        price="119.99", on_hand=units + 10, sku=f"HOLD-{uuid.uuid4().hex[:6]}"
    ).variants.get()
    start = timezone.now() - timedelta(seconds=1)
    return services.create_deal(
        actor=None,
        sku=variant.sku,
        deal_price="49.97",
        units=units,
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        limit_per_customer=limit,
    )


def test_an_account_holding_its_limit_gets_no_second_hold_from_the_wait_list(
    make_product, make_user
):
    from warenhaus.checkout import services as checkout
    from warenhaus.deals import services
    from warenhaus.deals.models import Hold, HoldStatus

    deal = _live_deal(make_product, units=2, limit=1)
    a, c = make_user(email="a-halter@example.de"), make_user(email="c-halter@example.de")
    mine = services.join_queue(deal_id=deal.pk, user=a)
    theirs = services.join_queue(deal_id=deal.pk, user=c)
    assert (mine["state"], theirs["state"]) == ("admitted", "admitted")  # nothing free now
    turns = [mine["ticket"]]
    try:
        entry = services.join_waitlist(deal_id=deal.pk, who=f"user:{a.pk}", email=a.email)
        turns.append(entry["entry"])
    except DomainError as err:  # a refusal keeps the promise too
        assert err.code == "limit_per_customer", err
    checkout.remove_line(cart_id=theirs["cart_id"], user=c, sku=deal.variant.sku)
    services.sweep()  # c's unit comes back and goes to the wait list
    held = Hold.objects.filter(deal=deal, ticket__in=turns, status=HoldStatus.ACTIVE)
    assert sum(h.quantity for h in held) <= deal.limit_per_customer
