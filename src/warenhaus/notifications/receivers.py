"""The mails that tell customers what happened to their orders and accounts (written to the
outbox inside the sender's transaction; delivered by the worker after the commit)."""

from warenhaus.accounts import events as account_events
from warenhaus.orders import events as order_events

from . import login_link, order_mail_checks


def _order_mail(kind: str, order, **context) -> None:
    from .services import enqueue_mail

    enqueue_mail(
        kind=kind,
        to_email=order.email,
        template=kind,
        context={"order": order, **context},
        language=order.language,
        dedupe_key=f"{kind}:{order.number}",
        related_object=f"order:{order.number}",
    )


def confirm_placed_order(*, orders, **event):
    for order in orders:
        _order_mail("order_confirmation", order, lines=list(order.lines.all()))


def tell_cancelled_orders(*, orders, mail=True, customer_note="", **event):
    """Only ``customer_note`` reaches the customer, never the internal reason."""
    if not mail:
        return
    note = (customer_note or "").strip()[:2000]
    for order in orders:
        _order_mail("order_cancelled", order, customer_note=note)


def tell_shipped_orders(*, orders, **event):
    for order in orders:
        _order_mail("order_shipped", order)


def mail_login_link(*, user, **event):
    """The key is made when the worker renders the mail (:mod:`.login_link`)."""
    from .services import enqueue_mail

    enqueue_mail(
        kind="login_link",
        to_email=user.email,
        template="login_link",
        context={"user": user},
        language=user.preferred_language,
        related_object=f"user:{user.pk}",
    )


def connect() -> None:
    login_link.register()
    order_mail_checks.register()
    account_events.login_link_requested.connect(
        mail_login_link, dispatch_uid="notifications.mail_login_link"
    )
    order_events.order_placed.connect(
        confirm_placed_order, dispatch_uid="notifications.confirm_placed_order"
    )
    order_events.order_cancelled.connect(
        tell_cancelled_orders, dispatch_uid="notifications.tell_cancelled_orders"
    )
    order_events.order_shipped.connect(
        tell_shipped_orders, dispatch_uid="notifications.tell_shipped_orders"
    )
