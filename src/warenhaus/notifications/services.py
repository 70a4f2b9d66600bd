"""Writing messages to the outbox and delivering them.

``enqueue_mail`` must be called inside the transaction of the event it reports: the message row
and its delivery task (django-tasks' database backend writes the task row in the same
transaction) commit or roll back together with the event.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import translation

from warenhaus.core.clock import now

from .models import DeliveryAttempt, MessageStatus, OutboxMessage

log = logging.getLogger("warenhaus.notifications")


def enqueue_mail(*, kind: str, to_email: str, template: str, context: dict, language: str = "de", dedupe_key: str | None = None, related_object: str = "") -> OutboxMessage | None:
    """Render ``notifications/<template>_subject.txt``, ``_body.txt`` and ``_body.html`` in the
    recipient's language and put the message in the outbox. Returns None if a message with the
    same ``dedupe_key`` exists already (each is sent once)."""
    with translation.override(language):
        ctx = {"site_url": settings.SITE_URL, "shop_name": settings.SHOP_NAME, **context}
        subject = " ".join(render_to_string(f"notifications/{template}_subject.txt", ctx).split())
        body_text = render_to_string(f"notifications/{template}_body.txt", ctx)
        try:
            body_html = render_to_string(f"notifications/{template}_body.html", ctx)
        except Exception:  # an HTML part is optional
            body_html = ""
    try:
        with transaction.atomic():
            msg = OutboxMessage.objects.create(
                kind=kind, to_email=to_email, subject=subject[:300], body_text=body_text, body_html=body_html,
                language=language, dedupe_key=dedupe_key, related_object=related_object, next_attempt_at=now(),
            )
    except IntegrityError:
        return None
    from .tasks import deliver_message

    deliver_message.enqueue(msg.pk)
    return msg


def deliver(message_id: int) -> str:
    """Try to send one message. Returns its status afterwards. Safe to call twice: a message is
    locked while it is sent and a sent one is never sent again."""
    with transaction.atomic():
        msg = OutboxMessage.objects.select_for_update().filter(pk=message_id).first()
        if msg is None or msg.status != MessageStatus.PENDING:
            return msg.status if msg else "missing"
        if msg.next_attempt_at > now() + timedelta(seconds=1):
            return "not_due"
        msg.attempts += 1
        email = EmailMultiAlternatives(subject=msg.subject, body=msg.body_text, from_email=settings.DEFAULT_FROM_EMAIL, to=[msg.to_email], headers={"X-Warenhaus-Message": str(msg.pk)})
        if msg.body_html:
            email.attach_alternative(msg.body_html, "text/html")
        try:
            email.send(fail_silently=False)
        except Exception as err:  # any transport failure is retried with backoff
            msg.last_error = f"{type(err).__name__}: {err}"[:2000]
            DeliveryAttempt.objects.create(message=msg, at=now(), ok=False, detail=msg.last_error)
            if msg.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
                msg.status = MessageStatus.FAILED
                log.error("giving up on message %s after %s attempts: %s", msg.pk, msg.attempts, msg.last_error)
            else:
                delay = settings.OUTBOX_BACKOFF_SECONDS * (2 ** (msg.attempts - 1))
                msg.next_attempt_at = now() + timedelta(seconds=delay)
                from .tasks import deliver_message

                deliver_message.using(run_after=msg.next_attempt_at).enqueue(msg.pk)
            msg.save()
            return msg.status
        msg.status = MessageStatus.SENT
        msg.sent_at = now()
        msg.last_error = ""
        msg.save()
        DeliveryAttempt.objects.create(message=msg, at=msg.sent_at, ok=True, detail="accepted by SMTP server")
        return msg.status


def requeue_due() -> int:
    """Enqueue delivery for pending messages that are due but whose task was lost (a worker
    died mid-send, a task row was pruned). The worker calls this periodically."""
    from .tasks import deliver_message

    count = 0
    for pk in OutboxMessage.objects.filter(status=MessageStatus.PENDING, next_attempt_at__lte=now() - timedelta(minutes=2)).values_list("pk", flat=True)[:500]:
        deliver_message.enqueue(pk)
        count += 1
    return count
