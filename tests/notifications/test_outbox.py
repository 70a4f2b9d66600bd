"""The outbox, end to end: an order is placed through the checkout service, the worker loop runs
the queued tasks, and we read what a real SMTP server received."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django_tasks_db.models import DBTaskResult

from warenhaus.notifications import audience, services
from warenhaus.notifications.models import (
    AttemptOutcome,
    DeliveryAttempt,
    MessageStatus,
    OutboxMessage,
)

from .conftest import run_worker


def only_message() -> OutboxMessage:
    return OutboxMessage.objects.get()


def test_order_confirmation_is_delivered_over_smtp(place_order, shopper, smtp_server, worker):
    order = place_order(payment_method="invoice", user=shopper)
    assert smtp_server.messages == [], "nothing leaves before the worker runs"
    msg = only_message()
    assert (msg.kind, msg.status, msg.to_email, msg.related_object) == (
        "order_confirmation",
        "pending",
        "erika@example.de",
        f"order:{order.number}",
    )
    assert (msg.template, msg.language, msg.subject, msg.body_text) == (
        "order_confirmation",
        "de",
        "",
        "",
    ), "rendered when it is sent"
    assert str(DBTaskResult.objects.get().id) == msg.task_id

    assert worker() == ["sent"]

    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["erika@example.de"]
    assert order.number in mail.subject and "Bestellung" in mail.subject, (
        "German for a German order"
    )
    assert mail.message["Message-ID"].startswith(f"<outbox-{msg.pk}.")
    text = mail.text
    for expected in (
        "Erika Mustermann",
        "Heidestraße 17",
        "51147 Köln",  # shipping address
        "2 × Espresso Bohnen 1 kg",
        "1 × Smartphone Nova 8",  # lines
        "37,98 €",
        "499,00 €",
        "536,98 €",  # line totals and the total (free shipping from 50 EUR)
        "7 %",
        "2,48 €",
        "19 %",
        "79,67 €",  # VAT breakdown per rate
        "DE89 3704 0044 0532 0130 00",
        order.number,  # invoice: where to pay and the reference
        f"{settings.SITE_URL}/account/orders/{order.number}/",  # the shopper's order page
    ):
        assert expected in text, f"{expected!r} missing from:\n{text}"
    assert "&amp;" not in text and "&#" not in text
    assert order.number in mail.html and "<table" in mail.html

    msg.refresh_from_db()
    assert msg.status == MessageStatus.SENT and msg.sent_at is not None and msg.attempts == 1
    [attempt] = DeliveryAttempt.objects.filter(message=msg)
    assert attempt.ok and attempt.outcome == AttemptOutcome.SENT and attempt.number == 1
    # what went out is kept on the message
    assert (msg.subject, msg.body_text, msg.body_html) == (
        mail.subject,
        *(part.replace("\r\n", "\n") for part in (text, mail.html)),
    )


def test_card_order_in_english_has_no_bank_details(place_order, smtp_server, worker):
    order = place_order(payment_method="test", language="en", email="john@example.com")  # a guest
    worker()
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["john@example.com"]
    assert order.number in mail.subject
    assert mail.subject.startswith("Your order")
    assert "€536.98" in mail.text and "Credit card" in mail.text
    assert "IBAN" not in mail.text and "IBAN" not in mail.html
    assert mail.message["Content-Language"] == "en"
    assert "/account/orders/" not in mail.text, "a guest has no order page to link to"


def test_links_lead_to_the_order_page_in_the_recipients_language(
    place_order, make_user, smtp_server, worker
):
    john = make_user(email="john@example.com", name="John Smith")
    order = place_order(payment_method="test", language="en", email=john.email, user=john)
    worker()
    [mail] = smtp_server.wait_for(1)
    assert f"{settings.SITE_URL}/en/account/orders/{order.number}/" in mail.text
    assert f'href="{settings.SITE_URL}/en/account/orders/{order.number}/"' in mail.html


def test_ampersands_and_quotes_reach_the_text_part_unescaped(
    place_order, make_product, smtp_server, worker
):
    v = make_product(title='Topf & Pfanne "Classic"', price="59.99").variants.get()
    place_order(items=[(v, 1)])
    worker()
    [mail] = smtp_server.wait_for(1)
    assert 'Topf & Pfanne "Classic"' in mail.text
    assert "Topf &amp; Pfanne &quot;Classic&quot;" in mail.html


def test_server_down_schedules_retries_with_exponential_backoff_then_delivers_once(
    place_order, smtp_server, worker, clock, settings
):
    settings.OUTBOX_BACKOFF_SECONDS = 30
    smtp_server.stop()
    order = place_order()
    msg = only_message()

    assert worker() == ["pending"]
    msg.refresh_from_db()
    assert msg.status == MessageStatus.PENDING and msg.attempts == 1
    first_retry = msg.next_attempt_at
    assert timedelta(seconds=29) < first_retry - msg.created_at < timedelta(seconds=32)
    [attempt] = DeliveryAttempt.objects.filter(message=msg)
    assert (
        not attempt.ok
        and attempt.outcome == AttemptOutcome.RETRY
        and "Connection" in attempt.detail
    )
    # the retry is a task of its own, scheduled for the retry time
    retry_task = DBTaskResult.objects.get(status="READY")
    assert retry_task.run_after == first_retry and str(retry_task.id) == msg.task_id

    assert worker() == [], "nothing is due before the backoff has passed"
    clock.advance(31)
    assert worker() == ["pending"]
    msg.refresh_from_db()
    assert msg.attempts == 2
    assert timedelta(seconds=59) < msg.next_attempt_at - (first_retry) < timedelta(seconds=63), (
        "the wait doubles"
    )

    smtp_server.start()  # the server comes back on the same port
    clock.advance(61)
    assert worker() == ["sent"]
    [mail] = smtp_server.wait_for(1)
    assert order.number in mail.subject
    msg.refresh_from_db()
    assert msg.status == MessageStatus.SENT and msg.attempts == 3
    assert list(DeliveryAttempt.objects.filter(message=msg).values_list("outcome", flat=True)) == [
        "retry",
        "retry",
        "sent",
    ]

    # and it is never sent again, whatever else runs
    clock.advance(3600)
    assert services.requeue_due() == 0
    assert services.deliver(msg.pk) == "sent"
    run_worker()
    assert len(smtp_server.messages) == 1


def test_gives_up_after_the_last_attempt(place_order, smtp_server, worker, clock, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    settings.OUTBOX_BACKOFF_SECONDS = 10
    smtp_server.stop()
    place_order()
    for _ in range(5):
        worker()
        clock.advance(3600)
    msg = only_message()
    assert msg.status == MessageStatus.FAILED and msg.attempts == 3
    assert list(msg.attempt_log.values_list("outcome", flat=True)) == ["retry", "retry", "failed"]
    assert not DBTaskResult.objects.filter(status="READY").exists()
    assert services.requeue_due() == 0


def test_a_permanent_refusal_is_not_retried(place_order, smtp_server, worker):
    smtp_server.refuse.add("erika@example.de")
    place_order()
    assert worker() == ["failed"]
    msg = only_message()
    assert msg.attempts == 1 and "550" in msg.last_error
    assert not DBTaskResult.objects.filter(status="READY").exists()


def test_rollback_of_the_event_leaves_no_message_and_no_task(place_order, smtp_server, worker):
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            place_order()
            assert OutboxMessage.objects.count() == 1 and DBTaskResult.objects.count() == 1
            raise RuntimeError("something later in the same unit of work failed")
    assert OutboxMessage.objects.count() == 0
    assert DBTaskResult.objects.count() == 0
    assert worker() == [] and smtp_server.messages == []


@pytest.mark.django_db(transaction=True)
def test_rollback_with_real_commits(make_product, address, smtp_server):
    from warenhaus.checkout import services as checkout
    from warenhaus.notifications.tasks import deliver_message  # noqa: F401  (the task is registered)

    v = make_product(price="20.00").variants.get()
    cart, _ = checkout.create_cart()
    checkout.add_line(cart_id=cart.id, sku=v.sku, quantity=1)
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            checkout.place_order(
                cart_id=cart.id,
                email="erika@example.de",
                shipping_address=address,
                payment_method="invoice",
            )
            raise RuntimeError("boom")
    assert OutboxMessage.objects.count() == 0 and DBTaskResult.objects.count() == 0
    # the same checkout, committed, leaves exactly one message and one task
    checkout.place_order(
        cart_id=cart.id,
        email="erika@example.de",
        shipping_address=address,
        payment_method="invoice",
    )
    assert OutboxMessage.objects.count() == 1 and DBTaskResult.objects.count() == 1


def test_a_failed_checkout_queues_nothing(make_product, address, db):
    from warenhaus.checkout import services as checkout
    from warenhaus.core.errors import PaymentFailed

    v = make_product(price="20.00").variants.get()
    cart, _ = checkout.create_cart()
    checkout.add_line(cart_id=cart.id, sku=v.sku, quantity=1)
    with pytest.raises(PaymentFailed):
        checkout.place_order(
            cart_id=cart.id,
            email="erika@example.de",
            shipping_address=address,
            payment_method="test",
            payment_token="decline",
        )
    assert OutboxMessage.objects.count() == 0 and DBTaskResult.objects.count() == 0


def test_duplicate_tasks_and_repeated_delivery_send_once(place_order, smtp_server, worker):
    from warenhaus.notifications.tasks import deliver_message

    place_order()
    msg = only_message()
    deliver_message.enqueue(msg.pk)  # e.g. requeued while the first was still waiting
    assert sorted(worker()) == ["sent", "sent"]
    assert services.deliver(msg.pk) == "sent"
    assert len(smtp_server.wait_for(1)) == 1
    assert msg.attempt_log.count() == 1


def test_a_message_whose_worker_died_mid_send_is_picked_up_again(
    place_order, smtp_server, worker, clock
):
    place_order()
    msg = only_message()
    # A worker claims the message and dies before it can record anything; its task is gone.
    claimed = services._claim(msg.pk)
    assert claimed.status == MessageStatus.SENDING
    DBTaskResult.objects.all().delete()
    assert services.deliver(msg.pk) == "in_progress", "nobody else sends a claimed message"
    assert services.requeue_due() == 0, "the lease has not run out yet"

    clock.advance(services.lease().total_seconds() + 1)
    assert services.requeue_due() == 1
    assert services.requeue_due() == 0, "its new task is waiting; no second one"
    assert worker() == ["sent"]
    assert len(smtp_server.wait_for(1)) == 1
    msg.refresh_from_db()
    assert msg.status == MessageStatus.SENT and msg.attempts == 2
    assert list(msg.attempt_log.values_list("outcome", flat=True)) == ["interrupted", "sent"]


def test_a_pending_message_whose_task_was_lost_is_requeued(place_order, smtp_server, worker, clock):
    place_order()
    DBTaskResult.objects.all().delete()
    assert services.requeue_due() == 0, "young messages get a grace period"
    clock.advance(services.requeue_grace().total_seconds() + 1)
    assert services.requeue_due() == 1
    assert worker() == ["sent"]
    assert len(smtp_server.wait_for(1)) == 1


def test_requeue_leaves_messages_with_a_waiting_task_alone(place_order, clock):
    place_order()
    clock.advance(3600)  # the worker is far behind
    assert services.requeue_due() == 0
    assert DBTaskResult.objects.count() == 1


def test_send_time_check_can_suppress_a_message(place_order, smtp_server, worker):
    def nobody(message):
        return "recipient no longer in the audience"

    audience.send_check("order_confirmation")(nobody)
    try:
        place_order()
        assert worker() == ["suppressed"]
    finally:
        audience.unregister("order_confirmation", nobody)
    msg = only_message()
    assert msg.status == MessageStatus.SUPPRESSED
    assert msg.attempt_log.get().outcome == AttemptOutcome.SUPPRESSED
    assert smtp_server.messages == []


def test_a_broken_send_time_check_retries_rather_than_sends(place_order, smtp_server, worker):
    def broken(message):
        raise LookupError("audience service unavailable")

    audience.send_check("order_confirmation")(broken)
    try:
        place_order()
        assert worker() == ["pending"]
    finally:
        audience.unregister("order_confirmation", broken)
    assert smtp_server.messages == []
    assert "audience service unavailable" in only_message().last_error


def test_dedupe_key_makes_a_second_enqueue_a_no_op(place_order):
    order = place_order()
    kw = dict(
        kind="order_shipped",
        to_email="a@example.de",
        template="order_shipped",
        context={"order": order},
        language="de",
        dedupe_key="x:1",
    )
    first = services.enqueue_mail(**kw)
    second = services.enqueue_mail(**kw)
    assert first is not None and second is None
    assert OutboxMessage.objects.filter(kind="order_shipped").count() == 1
    assert DBTaskResult.objects.count() == 2, "the order confirmation's task and this one"


def test_shipping_and_cancelling_send_their_mails(place_order, make_user, smtp_server, worker):
    from warenhaus.orders import services as orders

    support = make_user(email="support@warenhaus.example", roles=["support"])
    shipped = place_order(payment_method="test")
    cancelled = place_order(payment_method="invoice", email="max@example.de")
    orders.ship(number=shipped.number, actor=support)
    orders.cancel(
        number=cancelled.number,
        actor=support,
        reason="Betrugsverdacht (intern)",
        customer_note="Artikel beschädigt",
    )
    worker()
    # The cancelled order's confirmation had not left yet: it is suppressed at send time, and
    # the cancellation mail is what that customer gets.
    mails = smtp_server.wait_for(3)
    by_kind = {
        m.message["X-Warenhaus-Kind"]: m
        for m in mails
        if m.message["X-Warenhaus-Kind"] != "order_confirmation"
    }
    assert shipped.number in by_kind["order_shipped"].subject
    assert "Smartphone Nova 8" in by_kind["order_shipped"].text
    assert cancelled.number in by_kind["order_cancelled"].subject
    assert by_kind["order_cancelled"].rcpt_tos == ["max@example.de"]
    assert "Artikel beschädigt" in by_kind["order_cancelled"].text
    assert (
        "Betrugsverdacht" not in by_kind["order_cancelled"].text
    )  # internal reasons stay internal
    assert OutboxMessage.objects.filter(status="sent").count() == 3
    stale = OutboxMessage.objects.get(
        kind="order_confirmation", related_object=f"order:{cancelled.number}"
    )
    assert stale.status == "suppressed" and "cancelled" in stale.attempt_log.last().detail


def test_backoff_is_exponential_and_capped(settings):
    settings.OUTBOX_BACKOFF_SECONDS = 30
    settings.OUTBOX_BACKOFF_MAX_SECONDS = 3600
    assert [services.backoff_delay(n).total_seconds() for n in (1, 2, 3, 4, 8, 20)] == [
        30,
        60,
        120,
        240,
        3600,
        3600,
    ]


@pytest.mark.postgres
@pytest.mark.xdist_group("pg-concurrency")
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_send_a_message_once(make_product, address, smtp_server):
    """Many workers racing for the same message (duplicate tasks, requeue, two worker
    processes): one of them claims it, the rest leave it alone. Real threads, real commits."""
    import threading

    from django.db import connection

    from warenhaus.checkout import services as checkout

    if connection.vendor != "postgresql":
        pytest.skip("row locks across connections are proved on PostgreSQL")
    v = make_product(price="20.00").variants.get()
    cart, _ = checkout.create_cart()
    checkout.add_line(cart_id=cart.id, sku=v.sku, quantity=1)
    checkout.place_order(
        cart_id=cart.id,
        email="erika@example.de",
        shipping_address=address,
        payment_method="invoice",
    )
    msg = only_message()

    barrier = threading.Barrier(6)
    results = []

    def race():
        from django.db import connections

        try:
            barrier.wait()
            results.append(services.deliver(msg.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=race) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("sent") >= 1 and set(results) <= {"sent", "in_progress"}
    smtp_server.wait_for(1)
    assert len(smtp_server.messages) == 1
    assert msg.attempt_log.count() == 1
