"""How promotions react to what happens to orders."""

from warenhaus.orders import events as order_events


def redeem_vouchers_of_placed_order(
    *, orders, evaluation, user, email, channel, client_ip, **event
):
    """Count each voucher of the order against its campaign, code and customer (after the stock,
    which every checkout locks first: campaign -> code -> customer)."""
    from .services import redeem

    (order,) = orders
    redeem(
        order=order,
        evaluation=evaluation,
        user=user,
        email=email,
        channel=channel,
        client_ip=client_ip,
    )


def release_redemptions_of_cancelled_orders(*, orders, **event):
    """Give back what the cancelled orders' redemptions counted (where the campaign says so)."""
    from .release import release_for_orders

    release_for_orders([o.pk for o in orders])


def undo_redemptions_of_failed_order(*, orders, **event):
    """The order's payment failed: its redemptions are taken back whatever the campaign says
    about cancellations (the order never was). The cart kept its vouchers (see below)."""
    from decimal import Decimal

    from django.db.models import F, Value
    from django.db.models.functions import Greatest

    from .models import Campaign, Code, CustomerUsage, Redemption

    def less(field, n):
        return Greatest(F(field) - n, Value(0))

    for order in orders:
        reds = list(Redemption.objects.filter(order=order).order_by("campaign_id", "code_id"))
        for r in reds:  # the order the checkout counted them in: campaign -> code -> customer
            Campaign.objects.filter(pk=r.campaign_id).update(
                redeemed_count=less("redeemed_count", 1),
                spent_amount=Greatest(F("spent_amount") - r.amount, Value(Decimal("0"))),
            )
        for r in sorted(reds, key=lambda r: r.code_id):
            Code.objects.filter(pk=r.code_id).update(uses=less("uses", 1))
        for r in reds:
            CustomerUsage.objects.filter(
                campaign_id=r.campaign_id, redeemer_key=r.redeemer_key
            ).update(uses=less("uses", 1))
        Redemption.objects.filter(pk__in=[r.pk for r in reds]).delete()


def clear_cart_vouchers_of_confirmed_orders(*, orders, **event):
    """The order is binding: its cart's vouchers are used up. Not before: a card declined while
    being authorised leaves the cart with its vouchers as they were."""
    from .models import CartVoucher

    carts = [o.cart_id for o in orders if o.discount]  # no discount: no voucher was redeemed
    if carts:
        CartVoucher.objects.filter(cart_id__in=carts).delete()


def connect() -> None:
    order_events.order_confirmed.connect(
        clear_cart_vouchers_of_confirmed_orders,
        dispatch_uid="promotions.clear_cart_vouchers_of_confirmed_orders",
    )
    order_events.order_payment_failed.connect(
        undo_redemptions_of_failed_order,
        dispatch_uid="promotions.undo_redemptions_of_failed_order",
    )
    order_events.order_placed.connect(
        redeem_vouchers_of_placed_order, dispatch_uid="promotions.redeem_vouchers_of_placed_order"
    )
    order_events.order_cancelled.connect(
        release_redemptions_of_cancelled_orders,
        dispatch_uid="promotions.release_redemptions_of_cancelled_orders",
    )
