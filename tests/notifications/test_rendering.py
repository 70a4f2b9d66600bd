"""Mails are rendered by the worker when it sends them, not in the transaction of the event: the
outbox row holds the template, the language and the context (domain objects as references), and
the rendering is kept on the row once the mail has gone out."""

from __future__ import annotations

import datetime
import logging
from decimal import Decimal

import pytest
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult

from warenhaus.notifications import audience, context, mails, services
from warenhaus.notifications.models import AttemptOutcome, MessageStatus, OutboxMessage


def confirmation() -> OutboxMessage:
    return OutboxMessage.objects.get(kind="order_confirmation")


@pytest.fixture
def broken_template(settings, tmp_path):
    """A typo in the confirmation's text template, the way a deploy could ship one."""
    folder = tmp_path / "notifications"
    folder.mkdir()
    (folder / "order_confirmation_body.txt").write_text(
        "{% load mailformat %}Total: {{ order.total|monney }}\n"
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]


# --- what the outbox stores -----------------------------------------------------------------


def test_the_row_holds_references_to_the_objects_not_the_rendered_mail(place_order):
    from warenhaus.orders.models import OrderLine

    order = place_order(language="en", email="john@example.com")
    msg = confirmation()
    line_pks = list(
        OrderLine.objects.filter(order=order).order_by("id").values_list("pk", flat=True)
    )
    assert msg.context == {
        "order": {"__model__": "orders.order", "pk": order.pk},
        "lines": [{"__model__": "orders.orderline", "pk": pk} for pk in line_pks],
    }
    assert (msg.template, msg.language) == ("order_confirmation", "en")
    assert (msg.subject, msg.body_text, msg.body_html) == ("", "", "")


def test_context_values_come_back_as_the_types_the_caller_passed(
    place_order, django_assert_num_queries
):
    from warenhaus.orders.models import Order

    order = Order.objects.get(pk=place_order().pk)
    at = datetime.datetime(2026, 11, 23, 9, 30, tzinfo=datetime.UTC)
    original = {
        "order": order,
        "lines": list(order.lines.all()),
        "same_lines": order.lines.all(),  # a queryset is stored as the list of its rows
        "goodwill": Decimal("10.00"),
        "deadline": at,
        "day": datetime.date(2026, 12, 1),
        "note": "Artikel beschädigt",
        "nested": {"count": 2, "flags": [True, None], "amounts": [Decimal("1.50")]},
    }
    stored = context.serialize(original)
    assert stored["goodwill"] == {"__decimal__": "10.00"}
    OutboxMessage.objects.create(
        kind="x", to_email="a@example.de", context=stored, next_attempt_at=at
    )  # a JSON round trip
    stored = OutboxMessage.objects.get(kind="x").context

    with django_assert_num_queries(2):  # one query per model, however many references
        ctx = context.resolve(stored)
    assert ctx["order"] == order and ctx["order"].total == order.total
    assert ctx["lines"] == list(order.lines.order_by("id")) == ctx["same_lines"]
    assert ctx["goodwill"] == Decimal("10.00") and isinstance(ctx["goodwill"], Decimal)
    assert ctx["deadline"] == at and ctx["day"] == datetime.date(2026, 12, 1)
    assert ctx["nested"] == {"count": 2, "flags": [True, None], "amounts": [Decimal("1.50")]}
    assert ctx["note"] == "Artikel beschädigt"


def test_a_context_that_cannot_be_stored_is_the_callers_bug(db):
    from warenhaus.orders.models import Order

    for bad, reason in [
        ({"order": Order(number="WH-UNSAVED")}, "unsaved"),
        ({"when": object()}, "cannot be stored"),
        ({"data": {"__model__": "orders.order"}}, "reserved"),
    ]:
        with pytest.raises((TypeError, ValueError), match=reason):
            services.enqueue_mail(
                kind="x", to_email="a@example.de", template="order_shipped", context=bad
            )
    assert OutboxMessage.objects.count() == 0 and DBTaskResult.objects.count() == 0


def test_enqueue_writes_the_message_and_its_task_in_two_statements(place_order):
    """The task id is chosen up front, so the row is written once; a savepoint is needed only
    where a duplicate could hit the dedupe key."""
    order = place_order()
    kw = dict(
        kind="order_shipped",
        to_email="a@example.de",
        template="order_shipped",
        context={"order": order},
    )
    with transaction.atomic():
        with CaptureQueriesContext(connection) as plain:
            msg = services.enqueue_mail(**kw)
        with CaptureQueriesContext(connection) as deduped:
            services.enqueue_mail(**kw, dedupe_key="order_shipped:x")
    assert [q["sql"].split()[0] for q in plain.captured_queries] == ["INSERT", "INSERT"], (
        plain.captured_queries
    )
    assert [q["sql"].split()[0] for q in deduped.captured_queries] == [
        "SAVEPOINT",
        "INSERT",
        "RELEASE",
        "INSERT",
    ], deduped.captured_queries
    msg.refresh_from_db()
    assert DBTaskResult.objects.get(id=msg.task_id).args_kwargs == {"args": [msg.pk], "kwargs": {}}


def test_a_message_without_template_goes_out_as_written(db, smtp_server):
    """Rows written before rendering moved to the worker, and messages composed by hand."""
    from warenhaus.core.clock import now

    msg = OutboxMessage.objects.create(
        kind="note",
        to_email="a@example.de",
        subject="Hallo",
        body_text="Ein Text.\n",
        next_attempt_at=now(),
    )
    assert services.deliver(msg.pk) == "sent"
    [mail] = smtp_server.wait_for(1)
    assert (mail.subject, mail.text.strip()) == ("Hallo", "Ein Text.")
    msg.refresh_from_db()
    assert (msg.subject, msg.body_text) == ("Hallo", "Ein Text.\n")


# --- rendering at send time -----------------------------------------------------------------


def test_the_mail_shows_the_order_as_it_is_when_it_is_sent(place_order, smtp_server, worker):
    from warenhaus.orders.models import Order

    order = place_order()
    Order.objects.filter(pk=order.pk).update(
        shipping_address={**order.shipping_address, "name": "Erika Musterfrau"}
    )
    worker()
    [mail] = smtp_server.wait_for(1)
    assert "Erika Musterfrau" in mail.text and "Erika Mustermann" not in mail.text


def test_send_time_checks_see_the_rendered_mail(place_order, shopper, smtp_server, worker):
    seen = []

    def look(message):
        seen.append((message.subject, message.body_text, message.body_html))

    audience.send_check("order_confirmation")(look)
    try:
        order = place_order(user=shopper)
        assert worker() == ["sent"]
    finally:
        audience.unregister("order_confirmation", look)
    [(subject, text, html)] = seen
    assert (
        order.number in subject and f"/account/orders/{order.number}/" in text and "<table" in html
    )


# --- when rendering fails -------------------------------------------------------------------


def test_a_template_bug_fails_the_message_not_the_checkout(
    place_order, broken_template, smtp_server, worker, caplog
):
    order = place_order()  # the checkout does not render, so it cannot trip over the template
    assert order.status == "awaiting_payment"
    with caplog.at_level(logging.ERROR, logger="warenhaus.notifications"):
        assert worker() == ["failed"]
    msg = confirmation()
    assert msg.status == MessageStatus.FAILED and msg.attempts == 1
    [attempt] = msg.attempt_log.all()
    assert attempt.outcome == AttemptOutcome.FAILED and not attempt.ok
    assert (
        "TemplateSyntaxError" in attempt.detail
        and "monney" in attempt.detail
        and "Traceback" in attempt.detail
    )
    assert "while rendering notifications/order_confirmation_body.txt" in attempt.detail
    assert "TemplateSyntaxError" in msg.last_error
    assert not DBTaskResult.objects.filter(status="READY").exists(), (
        "no retry: another attempt renders the same bug"
    )
    assert services.requeue_due() == 0
    assert smtp_server.messages == []
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert str(msg.pk) in record.getMessage() and record.exc_info is not None


def test_a_deleted_object_fails_the_message_for_good(place_order, smtp_server, worker, clock):
    from warenhaus.orders.models import OrderLine

    order = place_order()
    gone = OrderLine.objects.filter(order=order).order_by("id").last()
    OrderLine.objects.filter(pk=gone.pk).delete()
    assert worker() == ["failed"]
    msg = confirmation()
    assert msg.status == MessageStatus.FAILED and msg.attempts == 1
    assert f"orders.orderline {gone.pk} no longer exists" in msg.attempt_log.get().detail
    clock.advance(24 * 3600)
    assert services.requeue_due() == 0 and worker() == [] and smtp_server.messages == []


def test_a_database_hiccup_while_rendering_is_retried(
    place_order, smtp_server, worker, clock, monkeypatch, settings
):
    settings.OUTBOX_BACKOFF_SECONDS = 30
    real = mails.BUILDERS["order_confirmation"]

    def unreachable(ctx):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setitem(mails.BUILDERS, "order_confirmation", unreachable)
    place_order()
    assert worker() == ["pending"]
    assert confirmation().attempt_log.get().outcome == AttemptOutcome.RETRY
    monkeypatch.setitem(mails.BUILDERS, "order_confirmation", real)
    clock.advance(31)
    assert worker() == ["sent"]
    assert len(smtp_server.wait_for(1)) == 1
