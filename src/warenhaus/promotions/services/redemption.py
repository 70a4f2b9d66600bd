"""Vouchers in carts and at checkout: promotions' side of checkout's discounts port, and the
redemption that counts each voucher inside the checkout's transaction.

Counters change only through conditional UPDATEs, always in the order campaign -> code ->
redeemer usage, so concurrent checkouts neither deadlock nor pass a limit.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import F, Q

from warenhaus.checkout.discounts import Candidate
from warenhaus.core.clock import now

from .. import codes as codelib
from ..errors import VoucherRefused
from ..evaluation import (
    Customer,
    Evaluation,
    check_channel,
    check_code_state,
    check_customer,
    evaluate,
)
from ..models import (
    Campaign,
    CampaignStatus,
    CartVoucher,
    Code,
    CodeStatus,
    CustomerUsage,
    Redemption,
)
from ..sql import cart_has_vouchers
from .codes import find_code


def redeemer_key(*, user_id=None, email: str = "") -> str | None:
    """``user:<id>`` for a shopper with an account (also when a guest checkout names an account's
    e-mail address), else ``email:<address>``; None while nothing is known."""
    if user_id:
        return f"user:{user_id}"
    if email:
        from django.contrib.auth import get_user_model

        uid = get_user_model().objects.filter(email=email).values_list("pk", flat=True).first()
        return f"user:{uid}" if uid else f"email:{email}"
    return None


def _found_code(raw: str) -> Code:
    """The stored code for what a shopper typed, unless a block rule matches it."""
    row = find_code(raw)
    if row.blocked_by_rule:
        raise VoucherRefused("voucher_blocked")
    return row


def _cart_customer(cart) -> Customer:
    uid = cart.user_id
    return Customer(key=redeemer_key(user_id=uid), user_id=uid)


class CartCodes:
    """Promotions' answer to checkout's discounts port (:mod:`warenhaus.checkout.discounts`):
    the codes on a cart are :class:`CartVoucher` rows, their worth is :func:`evaluate`'s."""

    def has_codes(self, cart_id):
        return cart_has_vouchers(cart_id)

    def evaluate(self, *, cart, lines, subtotal: Decimal) -> Evaluation:
        return evaluate_cart(cart=cart, lines=lines, subtotal=subtotal)

    def check_for_checkout(self, **context) -> Evaluation:
        return check_for_checkout(**context)

    def find(self, *, cart, code: str, channel: str, has_codes: bool | None) -> Candidate:
        """The code's state, channel and customer are checked unless the cart holds it."""
        row = _found_code(code)
        held = cart_voucher_rows(cart.pk) if has_codes is not False else []
        if any(c.pk == row.pk for _, c in held):
            return Candidate(ref=(row, held), on_cart=True)
        check_code_state(row, row.campaign)
        check_channel(row.campaign, channel)
        check_customer(row.campaign, _cart_customer(cart), final=False)
        return Candidate(ref=(row, held))

    def attach(self, *, cart, candidate: Candidate, lines, subtotal: Decimal, channel: str):
        """A new code is evaluated after those the cart holds, on this channel; it goes on the
        cart only if it applies."""
        row, held = candidate.ref
        if candidate.on_cart:
            if not lines:
                return Evaluation()
            return evaluate_cart(cart=cart, lines=lines, subtotal=subtotal, rows=held)
        customer = _cart_customer(cart)
        rows = (held if lines else []) + [(0, row)]
        trial = evaluate(rows, lines=lines, subtotal=subtotal, customer=customer, channel=channel)
        new = trial.applied[-1]
        if new.error is not None:
            raise new.error
        new.cart_voucher_id = CartVoucher.objects.create(cart=cart, code=row).pk
        rows[-1] = (new.cart_voucher_id, row)
        # The cart view evaluates without a channel: the same answer unless the channel refused
        # one of the vouchers held before.
        if any(a.error is not None and a.error.code == "voucher_channel" for a in trial.applied):
            trial = evaluate(rows, lines=lines, subtotal=subtotal, customer=customer)
        return trial

    def detach(self, *, cart, code: str) -> bool:
        qs = CartVoucher.objects.filter(cart=cart)
        raw = (code or "").strip()
        if raw.isdigit() and qs.filter(pk=int(raw)).exists():
            qs = qs.filter(pk=int(raw))
        else:
            qs = qs.filter(code__digest=codelib.digest(codelib.normalise(raw)))
        deleted, _ = qs.delete()
        return bool(deleted)

    def move(self, *, from_cart_id: str, to_cart_id: str) -> None:
        move_cart_vouchers(from_cart_id=from_cart_id, to_cart_id=to_cart_id)


def move_cart_vouchers(*, from_cart_id: str, to_cart_id: str) -> None:
    """At login the anonymous cart joins the shopper's: its vouchers come along (those the
    shopper's cart holds already are not doubled). Whether they still apply to this shopper
    (per-customer limit, first order) the cart view says at once."""
    have = set(CartVoucher.objects.filter(cart_id=to_cart_id).values_list("code_id", flat=True))
    CartVoucher.objects.filter(cart_id=from_cart_id).exclude(code_id__in=have).update(
        cart_id=to_cart_id
    )
    CartVoucher.objects.filter(cart_id=from_cart_id).delete()


def cart_voucher_rows(cart_id) -> list[tuple[int, Code]]:
    """``(cart voucher id, code with its campaign)`` in the order they were applied."""
    return [
        (cv.pk, cv.code)
        for cv in CartVoucher.objects.filter(cart_id=cart_id).select_related("code__campaign")
    ]


def evaluate_cart(*, cart, lines, subtotal: Decimal, rows=None) -> Evaluation:
    """The cart view's evaluation: no locks, channel not yet known. ``rows``: the cart's
    vouchers when the caller has read them already."""
    rows = cart_voucher_rows(cart.pk) if rows is None else rows
    if not rows:
        return Evaluation()
    return evaluate(
        rows,
        lines=lines,
        subtotal=subtotal,
        customer=Customer(key=redeemer_key(user_id=cart.user_id), user_id=cart.user_id),
    )


def check_for_checkout(
    *, evaluation: Evaluation, lines, subtotal: Decimal, user_id, email: str, channel: str
) -> Evaluation:
    """Evaluate again with everything checkout knows (channel, customer); raise the first reason
    a voucher does not apply."""
    if not evaluation.applied:
        return evaluation
    customer = Customer(
        key=redeemer_key(user_id=user_id, email=email), user_id=user_id, email=email
    )
    ev = evaluate(
        [(a.cart_voucher_id, a.code) for a in evaluation.applied],
        lines=lines,
        subtotal=subtotal,
        customer=customer,
        channel=channel,
        final=True,
    )
    if ev.errors:
        raise ev.errors[0]
    return ev


def _why_campaign_refused(campaign_id: int, amount: Decimal) -> VoucherRefused:
    c = Campaign.objects.get(pk=campaign_id)
    try:
        check_code_state(Code(status=CodeStatus.ACTIVE), c)
    except VoucherRefused as err:
        return err
    return VoucherRefused("voucher_budget_exhausted")


def redeem(
    *, order, evaluation: Evaluation, user=None, email: str, channel: str, client_ip: str = ""
) -> list[Redemption]:
    """Inside the checkout's transaction: count each voucher against its campaign, its code and
    the customer, each with a conditional UPDATE that refuses passing a limit; write the
    redemptions. Raises the specific refusal, which rolls the whole checkout back."""
    live = [a for a in evaluation.applied if a.error is None and a.amount > 0]
    if not live:
        return []
    at = now()
    user_id = getattr(user, "pk", None)
    key = redeemer_key(user_id=user_id, email=email)
    new_account = bool(user_id) and user.date_joined >= at - timedelta(
        hours=settings.VOUCHER_NEW_ACCOUNT_HOURS
    )
    for a in sorted(live, key=lambda a: a.campaign.pk):
        c = a.campaign
        n = (
            Campaign.objects.filter(pk=c.pk, status=CampaignStatus.APPROVED)
            .filter(Q(total_limit__isnull=True) | Q(redeemed_count__lt=F("total_limit")))
            .filter(Q(budget__isnull=True) | Q(budget__gte=F("spent_amount") + a.amount))
            .update(
                redeemed_count=F("redeemed_count") + 1, spent_amount=F("spent_amount") + a.amount
            )
        )
        if n != 1:
            raise _why_campaign_refused(c.pk, a.amount)
    for a in sorted(live, key=lambda a: a.code.pk):
        n = (
            Code.objects.filter(pk=a.code.pk, status=CodeStatus.ACTIVE)
            .filter(Q(max_uses__isnull=True) | Q(uses__lt=F("max_uses")))
            .update(uses=F("uses") + 1)
        )
        if n != 1:
            blocked = Code.objects.filter(pk=a.code.pk, status=CodeStatus.BLOCKED).exists()
            raise VoucherRefused("voucher_blocked" if blocked else "voucher_exhausted")
    for a in sorted(live, key=lambda a: a.campaign.pk):
        limit = a.campaign.per_customer_limit
        usage, _ = CustomerUsage.objects.get_or_create(
            campaign_id=a.campaign.pk, redeemer_key=key, defaults={"uses": 0, "max_uses": limit}
        )
        n = (
            CustomerUsage.objects.filter(pk=usage.pk)
            .filter(Q(max_uses__isnull=True) | Q(uses__lt=F("max_uses")))
            .update(uses=F("uses") + 1)
        )
        if n != 1:
            raise VoucherRefused("limit_per_customer", limit=limit)
    basket = order.subtotal
    rows = Redemption.objects.bulk_create(
        [
            Redemption(
                campaign=a.campaign,
                code=a.code,
                order=order,
                redeemer_key=key,
                amount=a.amount,
                basket_value=basket,
                channel=channel,
                client_ip=client_ip or None,
                new_account=new_account,
                guest=not user_id,
                created_at=at,
            )
            for a in live
        ]
    )
    CartVoucher.objects.filter(cart_id=order.cart_id).delete()
    return rows
