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


def connect() -> None:
    order_events.order_placed.connect(
        redeem_vouchers_of_placed_order, dispatch_uid="promotions.redeem_vouchers_of_placed_order"
    )
    order_events.order_cancelled.connect(
        release_redemptions_of_cancelled_orders,
        dispatch_uid="promotions.release_redemptions_of_cancelled_orders",
    )
