"""Does a voucher apply to a basket, and for how much? Pure reading: used by the cart view on
every change (no locks) and again by checkout, which then redeems under conditional UPDATEs.

Each condition is a small function that raises :class:`VoucherRefused` with its code; the
benefit is :func:`discount_for`. The discount never exceeds the eligible items, the campaign's
maximum share of the basket (counting the vouchers before it), nor the basket.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from warenhaus.checkout.discounts import Evaluation
from warenhaus.core.clock import now as clock_now
from warenhaus.core.money import ZERO, cents

from .errors import VoucherRefused
from .models import (
    Campaign,
    CampaignStatus,
    Code,
    CodeStatus,
    CustomerUsage,
    DiscountKind,
    Eligibility,
    Stacking,
)


@dataclass
class Customer:
    """Who would redeem: ``key`` is the redeemer key (``user:<id>`` or ``email:<address>``);
    unknown (None) for an anonymous cart until checkout names an e-mail address."""

    key: str | None = None
    user_id: int | None = None
    email: str = ""


@dataclass
class Applied:
    cart_voucher_id: int
    code: Code
    campaign: Campaign
    amount: Decimal = ZERO
    error: VoucherRefused | None = None

    def as_json(self) -> dict:
        from warenhaus.core.money import money_json

        return {
            "id": str(self.cart_voucher_id),
            "code_hint": self.code.display_hint,
            "campaign": self.campaign.name,
            "applies": self.error is None,
            "discount": money_json(self.amount if self.error is None else ZERO),
            "problem": self.error.code if self.error is not None else None,
        }

    def problem(self) -> dict:
        """The cart's problem entry for a voucher that does not apply."""
        return {
            **self.error.extra,
            "code": self.error.code,
            "voucher": self.code.display_hint,
            "message": str(self.error.detail),
        }


# --- conditions ------------------------------------------------------------------------------


def check_code_state(code: Code, campaign: Campaign, *, at=None) -> None:
    """Status, validity window, limits and budget as they stand (no locks)."""
    at = at or clock_now()
    if code.status == CodeStatus.BLOCKED:
        raise VoucherRefused("voucher_blocked")
    if campaign.status == CampaignStatus.DRAFT:
        raise VoucherRefused("voucher_not_approved")
    if campaign.status == CampaignStatus.PAUSED:
        raise VoucherRefused("voucher_paused")
    if campaign.status == CampaignStatus.REVOKED:
        raise VoucherRefused("voucher_revoked")
    if at < campaign.valid_from:
        raise VoucherRefused("voucher_not_yet_valid", valid_from=campaign.valid_from.isoformat())
    if campaign.valid_until is not None and at >= campaign.valid_until:
        raise VoucherRefused("voucher_expired")
    if campaign.total_limit is not None and campaign.redeemed_count >= campaign.total_limit:
        raise VoucherRefused("voucher_exhausted")
    if code.max_uses is not None and code.uses >= code.max_uses:
        raise VoucherRefused("voucher_exhausted")
    if campaign.budget is not None and campaign.spent_amount >= campaign.budget:
        raise VoucherRefused("voucher_budget_exhausted")


def check_channel(campaign: Campaign, channel: str | None) -> None:
    if channel is not None and channel not in (campaign.channels or []):
        raise VoucherRefused(
            "voucher_channel", channel=channel, channels=list(campaign.channels or [])
        )


def has_earlier_orders(customer: Customer) -> bool:
    from django.db.models import Q

    from warenhaus.orders.models import Order, OrderStatus

    q = Q()
    if customer.user_id:
        q |= Q(user_id=customer.user_id)
    if customer.email:
        q |= Q(email=customer.email)
    if not q:
        return False
    return Order.objects.filter(q).exclude(status=OrderStatus.CANCELLED).exists()


def check_customer(campaign: Campaign, customer: Customer, *, final: bool) -> None:
    """Eligibility and the per-customer limit. Until checkout (``final``) an anonymous cart's
    customer is unknown, so only what can be known is checked."""
    if (
        campaign.customer_eligibility == Eligibility.REGISTERED
        and customer.user_id is None
        and (final or customer.key)
    ):
        raise VoucherRefused(
            "voucher_not_eligible",
            detail="This voucher is for registered customers; please log in.",
        )
    if (
        campaign.customer_eligibility == Eligibility.NEW
        and (customer.user_id or customer.email)
        and has_earlier_orders(customer)
    ):
        raise VoucherRefused(
            "voucher_not_eligible", detail="This voucher is for a first order only."
        )
    if campaign.per_customer_limit is not None and customer.key:
        used = (
            CustomerUsage.objects.filter(campaign=campaign, redeemer_key=customer.key)
            .values_list("uses", flat=True)
            .first()
            or 0
        )
        if used >= campaign.per_customer_limit:
            raise VoucherRefused("limit_per_customer", limit=campaign.per_customer_limit)


def eligible_total(campaign: Campaign, lines) -> Decimal:
    products = set(campaign.eligible_product_ids or [])
    categories = set(campaign.eligible_category_ids or [])
    if not products and not categories:
        return sum((line.line_total for line in lines), ZERO)
    return sum(
        (
            line.line_total
            for line in lines
            if getattr(line, "product_id", None) in products
            or getattr(line, "category_id", None) in categories
        ),
        ZERO,
    )


def discount_for(campaign: Campaign, lines, *, subtotal: Decimal, already: Decimal) -> Decimal:
    """The benefit, or a refusal (minimum basket, nothing eligible, no room left)."""
    if subtotal < campaign.min_basket:
        raise VoucherRefused("voucher_min_basket", min_basket=f"{campaign.min_basket:.2f}")
    base = eligible_total(campaign, lines)
    if base <= 0:
        raise VoucherRefused("voucher_not_eligible")
    if campaign.discount_kind == DiscountKind.FIXED:
        raw = campaign.discount_value
    else:
        raw = cents(base * campaign.discount_value / Decimal(100))
        if campaign.discount_cap is not None:
            raw = min(raw, campaign.discount_cap)
    share_room = (
        cents(subtotal * campaign.max_share / Decimal(100)).quantize(Decimal("0.01")) - already
    )
    amount = min(raw, base, share_room, subtotal - already)
    amount = cents(max(amount, ZERO))
    if amount <= 0:
        raise VoucherRefused("voucher_not_stackable" if already > 0 else "voucher_not_eligible")
    if campaign.budget is not None and campaign.spent_amount + amount > campaign.budget:
        raise VoucherRefused("voucher_budget_exhausted")
    return amount


def evaluate(
    rows: list[tuple[int, Code]],
    *,
    lines,
    subtotal: Decimal,
    customer: Customer,
    channel: str | None = None,
    final: bool = False,
    at=None,
) -> Evaluation:
    """Evaluate the vouchers of a cart in the order they were applied."""
    ev = Evaluation()
    already = ZERO
    live = 0
    exclusive_seen = False
    campaigns_live: set[int] = set()
    for cart_voucher_id, code in rows:
        campaign = code.campaign
        a = Applied(cart_voucher_id=cart_voucher_id, code=code, campaign=campaign)
        try:
            check_code_state(code, campaign, at=at)
            check_channel(campaign, channel)
            if live and (exclusive_seen or campaign.stacking == Stacking.EXCLUSIVE):
                raise VoucherRefused("voucher_not_stackable")
            if campaign.pk in campaigns_live:  # stacking is across campaigns, one code each
                raise VoucherRefused(
                    "voucher_not_stackable",
                    "Only one code of the same promotion applies to an order.",
                    campaign=campaign.name,
                )
            check_customer(campaign, customer, final=final)
            a.amount = discount_for(campaign, lines, subtotal=subtotal, already=already)
        except VoucherRefused as err:
            a.error = err
        else:
            already += a.amount
            live += 1
            campaigns_live.add(campaign.pk)
            exclusive_seen = exclusive_seen or campaign.stacking == Stacking.EXCLUSIVE
        ev.applied.append(a)
    return ev
