"""The send-time checks of the orders and promotions mails decide when the mail leaves, not when
it is written: a mail queued while it was true and untrue by the time the worker delivers it is
suppressed, with the check's reason in its delivery log; one that is still true is delivered
over SMTP (to a real in-process server)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest

from warenhaus.notifications import services as outbox
from warenhaus.notifications.models import AttemptOutcome, MessageStatus, OutboxMessage

pytestmark = pytest.mark.django_db

_numbers = itertools.count(1)

NOT_SHIPPED = "the order is cancelled, not shipped"
NOT_STAFF = "the recipient is no longer active promotions staff"


def _pending(kind: str, **filters) -> OutboxMessage:
    """The one queued message of ``kind``, not yet tried: whatever decides, decides later."""
    msg = OutboxMessage.objects.get(kind=kind, **filters)
    assert (msg.status, msg.attempts) == (MessageStatus.PENDING, 0)
    return msg


def _suppressed_with(msg: OutboxMessage, reason: str) -> None:
    msg.refresh_from_db()
    assert msg.status == MessageStatus.SUPPRESSED and msg.sent_at is None
    (attempt,) = msg.attempt_log.all()
    assert (attempt.outcome, attempt.ok, attempt.detail) == (
        AttemptOutcome.SUPPRESSED,
        False,
        reason,
    )
    assert msg.last_error == reason


def _delivered(msg: OutboxMessage, smtp_server) -> None:
    msg.refresh_from_db()
    assert msg.status == MessageStatus.SENT
    assert [a.outcome for a in msg.attempt_log.all()] == [AttemptOutcome.SENT]
    got = [m for m in smtp_server.messages if m.message["X-Warenhaus-Message"] == str(msg.pk)]
    assert len(got) == 1 and got[0].rcpt_tos == [msg.to_email]


def _kinds_received(smtp_server) -> list[tuple[str, str]]:
    return sorted((m.message["X-Warenhaus-Kind"], m.rcpt_tos[0]) for m in smtp_server.messages)


# --- orders: the shipping mail -------------------------------------------------------------------


@pytest.fixture
def support(make_user):
    return make_user(email="versand@warenhaus.example", roles=["support"])


def test_a_shipping_mail_still_true_at_send_time_is_delivered(
    place_order, support, smtp_server, worker
):
    from warenhaus.orders import services as orders

    order = place_order(payment_method="test", email="erika@example.de")
    orders.ship(number=order.number, actor=support)
    msg = _pending("order_shipped", related_object=f"order:{order.number}")
    worker()
    _delivered(msg, smtp_server)
    assert _kinds_received(smtp_server) == [
        ("order_confirmation", "erika@example.de"),
        ("order_shipped", "erika@example.de"),
    ]


def test_a_shipping_mail_whose_order_is_cancelled_before_it_leaves_is_suppressed(
    place_order, support, smtp_server, worker
):
    """The state machine lets no shipped order be cancelled, so the shipping mail is written
    to the outbox for an order that has not left yet, as the shipping receiver writes it; the
    order is cancelled before the worker runs. The customer gets the cancellation, not a
    shipping notice."""
    from warenhaus.orders import services as orders

    order = place_order(payment_method="invoice", email="max@example.de")
    outbox.enqueue_mail(
        kind="order_shipped",
        to_email=order.email,
        template="order_shipped",
        context={"order": order},
        language=order.language,
        dedupe_key=f"order_shipped:{order.number}",
        related_object=f"order:{order.number}",
    )
    msg = _pending("order_shipped", related_object=f"order:{order.number}")
    orders.cancel(number=order.number, actor=support, reason="Kunde storniert telefonisch")
    worker()
    _suppressed_with(msg, NOT_SHIPPED)
    smtp_server.wait_for(1)
    assert _kinds_received(smtp_server) == [("order_cancelled", "max@example.de")]


def test_the_shipping_check_reads_the_order_when_the_worker_sends_not_when_the_mail_was_written(
    place_order, support, smtp_server, worker
):
    """One mail written for an order that has not shipped yet, delivered after it shipped:
    what counts is the order at the moment of sending."""
    from warenhaus.orders import services as orders

    order = place_order(payment_method="test", email="erika@example.de")
    outbox.enqueue_mail(
        kind="order_shipped",
        to_email=order.email,
        template="order_shipped",
        context={"order": order},
        language=order.language,
        dedupe_key=f"order_shipped:{order.number}",
        related_object=f"order:{order.number}",
    )
    msg = _pending("order_shipped", related_object=f"order:{order.number}")
    orders.ship(number=order.number, actor=support)  # its own mail is the same (dedupe key)
    worker()
    _delivered(msg, smtp_server)


# --- promotions: the voucher alert ---------------------------------------------------------------


@pytest.fixture
def staff(make_user):
    """The promotions staff an alert goes to: an author, an approver, and someone with both
    roles."""
    return {
        "author": make_user(email="autorin@warenhaus.example", roles=["promotions"]),
        "approver": make_user(email="freigabe@warenhaus.example", roles=["promotions_approver"]),
        "both": make_user(
            email="beides@warenhaus.example", roles=["promotions", "promotions_approver"]
        ),
    }


@pytest.fixture
def tripped_campaign(staff):
    """``tripped_campaign()`` -> a live campaign whose public code was just redeemed eleven
    times in ten seconds, and the leak monitors' sweep that wrote its alert mails."""
    from warenhaus.core.clock import now
    from warenhaus.orders.models import Order
    from warenhaus.promotions import services
    from warenhaus.promotions.models import Code, Redemption

    def make():
        at = now()
        c = services.create_campaign(
            actor=staff["author"],
            code_mode="public",
            public_code=f"LECK{next(_numbers)}",
            name="Sommeraktion",
            discount_kind="fixed",
            discount_value="10.00",
            min_basket="30.00",
            budget="1000.00",
            total_limit=100,
            valid_until=at + timedelta(days=30),
            auto_pause=False,
        )
        c = services.approve_campaign(campaign_id=c.pk, actor=staff["approver"])
        code = Code.objects.filter(campaign=c).first()
        for i in range(11):
            n = next(_numbers)
            order = Order.objects.create(
                number=f"LECK{n:08d}",
                email=f"k{n}@example.de",
                shipping_address={},
                shipping_method="standard",
                payment_method="invoice",
                subtotal=Decimal("100.00"),
                shipping=Decimal("0"),
                vat=Decimal("0"),
                total=Decimal("100.00"),
                placed_at=at - timedelta(seconds=i),
            )
            Redemption.objects.create(
                campaign=c,
                code=code,
                order=order,
                redeemer_key=f"email:k{n}@example.de",
                amount=Decimal("10.00"),
                basket_value=Decimal("100.00"),
                channel="web",
                client_ip="192.0.2.1",
                created_at=at - timedelta(seconds=i),
            )
        assert len(services.run_monitors(now=at)) == 1
        return c

    return make


def _alert_to(user) -> OutboxMessage:
    return _pending("voucher_alert", to_email=user.email)


def test_voucher_alerts_to_people_still_promotions_staff_are_delivered(
    tripped_campaign, staff, smtp_server, worker
):
    tripped_campaign()
    mails = [_alert_to(u) for u in staff.values()]
    worker()
    for msg in mails:
        _delivered(msg, smtp_server)


def _lose_the_role(user, role: str = "promotions") -> None:
    """What the admin site does to a staff member's groups (accounts has no service for it)."""
    from django.contrib.auth.models import Group

    user.groups.remove(Group.objects.get(name=role))


def _deactivate(user) -> None:
    user.is_active = False
    user.save(update_fields=["is_active"])


@pytest.mark.parametrize("how", [_lose_the_role, _deactivate], ids=["role_removed", "deactivated"])
def test_a_voucher_alert_to_someone_no_longer_promotions_staff_when_it_leaves_is_suppressed(
    tripped_campaign, staff, smtp_server, worker, how
):
    """The author loses the role (or the account) after the alert was written and before the
    worker sends it: theirs is suppressed with the reason logged; the others' go out, also to
    the colleague who gave up one of two promotions roles."""
    tripped_campaign()
    gone, still, one_left = (_alert_to(staff[k]) for k in ("author", "approver", "both"))
    how(staff["author"])
    _lose_the_role(staff["both"], "promotions")  # keeps promotions_approver
    worker()
    _suppressed_with(gone, NOT_STAFF)
    _delivered(still, smtp_server)
    _delivered(one_left, smtp_server)
    assert _kinds_received(smtp_server) == [
        ("voucher_alert", staff["both"].email),
        ("voucher_alert", staff["approver"].email),
    ]
