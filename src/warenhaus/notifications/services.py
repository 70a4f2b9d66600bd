"""Writing messages to the outbox and delivering them.

``enqueue_mail`` must be called inside the transaction of the event it reports: the message row
and its delivery task (django-tasks' database backend writes the task row in the same
transaction) commit or roll back together with the event.

``deliver`` sends one message in three short steps, so that no database lock is held while we
talk to the mail server (on SQLite a held write lock would stall the whole shop for as long as
a dead server takes to time out):

1. claim: lock the row, check it is due and pending, mark it ``sending`` with a lease, commit;
2. send, outside any transaction, after the send-time checks (:mod:`.audience`);
3. record: the attempt and the outcome (sent; or a retry with exponential backoff, with its
   task enqueued in the same transaction; or failed for good).

A second worker that gets the same message finds it claimed and leaves it alone, and a sent
message is never claimed again. The one window left is a worker that dies after the server
accepted the message and before step 3 commits: the lease runs out, ``requeue_due`` picks the
message up again, and it is sent with the same Message-ID so the receiving side can drop the
duplicate. Losing a message is worse than that.
"""

from __future__ import annotations

import logging
import re
import smtplib
from datetime import timedelta
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import translation

from warenhaus.core.clock import now

from . import audience, mails
from .models import AttemptOutcome, DeliveryAttempt, MessageStatus, OutboxMessage

log = logging.getLogger("warenhaus.notifications")

FINAL = {MessageStatus.SENT, MessageStatus.FAILED, MessageStatus.SUPPRESSED}


# --- settings with defaults -----------------------------------------------------------------

def max_attempts() -> int:
    return max(1, int(settings.OUTBOX_MAX_ATTEMPTS))


def backoff_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: base, 2 x base, 4 x base, ... capped."""
    base = max(0, int(settings.OUTBOX_BACKOFF_SECONDS))
    cap = int(getattr(settings, "OUTBOX_BACKOFF_MAX_SECONDS", 6 * 3600))
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def lease() -> timedelta:
    """How long a claim lasts. Longer than any SMTP conversation can take (each socket operation
    may wait EMAIL_TIMEOUT), so a live worker never loses its claim to another."""
    timeout = getattr(settings, "EMAIL_TIMEOUT", None) or 30
    return timedelta(seconds=int(getattr(settings, "OUTBOX_LEASE_SECONDS", max(120, 6 * timeout))))


def requeue_grace() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "OUTBOX_REQUEUE_GRACE_SECONDS", 60)))


# --- writing --------------------------------------------------------------------------------

def _language(language: str) -> str:
    codes = [code for code, _ in settings.LANGUAGES]
    language = (language or settings.LANGUAGE_CODE)[:8]
    return language if language in codes else language[:2] if language[:2] in codes else settings.LANGUAGE_CODE


def render_mail(*, template: str, context: dict, language: str) -> tuple[str, str, str]:
    """Subject, plain text and HTML of ``notifications/<template>_*`` in ``language``."""
    with translation.override(language):
        ctx = mails.context_for(template, context)
        subject = " ".join(render_to_string(f"notifications/{template}_subject.txt", ctx).split())
        # Templates keep their tags readable; the blank lines that leaves are squeezed here.
        body_text = re.sub(r"\n{3,}", "\n\n", render_to_string(f"notifications/{template}_body.txt", ctx)).strip() + "\n"
        try:
            body_html = render_to_string(f"notifications/{template}_body.html", ctx)
        except TemplateDoesNotExist:  # an HTML part is optional; any other error is a bug and raises
            body_html = ""
    return subject, body_text, body_html


def enqueue_mail(*, kind: str, to_email: str, template: str, context: dict, language: str = "de", dedupe_key: str | None = None, related_object: str = "") -> OutboxMessage | None:
    """Render the mail in the recipient's language and put it in the outbox with its delivery
    task. Returns None if a message with the same ``dedupe_key`` exists already (each is sent
    once)."""
    language = _language(language)
    subject, body_text, body_html = render_mail(template=template, context=context, language=language)
    try:
        with transaction.atomic():
            msg = OutboxMessage.objects.create(
                kind=kind, to_email=to_email, subject=subject[:300], body_text=body_text, body_html=body_html,
                language=language, dedupe_key=dedupe_key, related_object=related_object[:120], next_attempt_at=now(),
            )
            _enqueue_task(msg.pk)
    except IntegrityError:
        if dedupe_key and OutboxMessage.objects.filter(dedupe_key=dedupe_key).exists():
            return None
        raise
    return msg


def _enqueue_task(message_id: int, *, run_after=None) -> str:
    """Enqueue the delivery task and remember its id on the message. Call inside a transaction."""
    from .tasks import deliver_message

    task = deliver_message.using(run_after=run_after) if run_after else deliver_message
    result = task.enqueue(message_id)
    OutboxMessage.objects.filter(pk=message_id).update(task_id=str(result.id))
    return str(result.id)


# --- delivering -----------------------------------------------------------------------------

def _record(msg: OutboxMessage, outcome: str, detail: str, at=None) -> None:
    DeliveryAttempt.objects.create(
        message=msg, number=msg.attempts, at=at or now(), ok=outcome == AttemptOutcome.SENT, outcome=outcome, detail=detail[:2000]
    )


def _claim(message_id: int) -> OutboxMessage | str:
    """Step 1: the message, now ``sending`` under our lease, or the reason we may not send it."""
    with transaction.atomic():
        msg = OutboxMessage.objects.select_for_update().filter(pk=message_id).first()
        if msg is None:
            return "missing"
        t = now()
        if msg.status in FINAL:
            return msg.status
        if msg.status == MessageStatus.SENDING:
            if msg.claimed_until and msg.claimed_until > t:
                return "in_progress"  # another worker has it
            # The worker that claimed it died; we do not know whether the server got the message.
            _record(msg, AttemptOutcome.INTERRUPTED, "The worker stopped during delivery; outcome unknown. Sending again with the same Message-ID.")
            log.warning("message %s: previous delivery attempt was interrupted; retrying", msg.pk)
            if msg.attempts >= max_attempts():
                msg.status = MessageStatus.FAILED
                msg.claimed_until = None
                msg.last_error = "interrupted during the last allowed attempt"
                msg.save(update_fields=["status", "claimed_until", "last_error"])
                return msg.status
        elif msg.next_attempt_at > t + timedelta(seconds=1):
            return "not_due"
        msg.status = MessageStatus.SENDING
        msg.attempts += 1
        msg.claimed_until = t + lease()
        msg.save(update_fields=["status", "attempts", "claimed_until"])
        return msg


def _message_id(msg: OutboxMessage) -> str:
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "warenhaus.invalid"
    return f"<outbox-{msg.pk}.{int(msg.created_at.timestamp())}@{domain}>"


def _send(msg: OutboxMessage) -> None:
    email = EmailMultiAlternatives(
        subject=msg.subject, body=msg.body_text, from_email=settings.DEFAULT_FROM_EMAIL, to=[msg.to_email],
        headers={"Message-ID": _message_id(msg), "X-Warenhaus-Message": str(msg.pk), "X-Warenhaus-Kind": msg.kind, "Content-Language": msg.language},
    )
    if msg.body_html:
        email.attach_alternative(msg.body_html, "text/html")
    email.send(fail_silently=False)


def is_permanent(err: BaseException) -> bool:
    """A refusal that retrying cannot change: the server rejected every recipient, or the
    message itself, with a 5xx code. Connection trouble, 4xx and authentication or sender
    problems (our configuration, which someone will fix) are retried."""
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in err.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(err, smtplib.SMTPDataError):
        return err.smtp_code >= 500
    return False


def _finish(message_id: int, *, outcome: str, detail: str) -> str:
    """Step 3: record the attempt and move the message on."""
    with transaction.atomic():
        msg = OutboxMessage.objects.select_for_update().get(pk=message_id)
        t = now()
        if msg.status == MessageStatus.SENT and outcome != AttemptOutcome.SENT:
            return msg.status  # cannot happen while leases hold; never undo a recorded send
        if outcome == AttemptOutcome.SENT:
            msg.status, msg.sent_at, msg.last_error = MessageStatus.SENT, t, ""
        elif outcome == AttemptOutcome.SUPPRESSED:
            msg.status, msg.last_error = MessageStatus.SUPPRESSED, detail
        else:
            msg.last_error = detail
            if outcome == AttemptOutcome.RETRY and msg.attempts >= max_attempts():
                outcome = AttemptOutcome.FAILED
            if outcome == AttemptOutcome.FAILED:
                msg.status = MessageStatus.FAILED
                log.error("giving up on message %s (%s to %s) after %s attempts: %s", msg.pk, msg.kind, msg.to_email, msg.attempts, detail)
            else:
                msg.status = MessageStatus.PENDING
                msg.next_attempt_at = t + backoff_delay(msg.attempts)
                log.warning("message %s attempt %s failed, next at %s: %s", msg.pk, msg.attempts, msg.next_attempt_at.isoformat(), detail)
        msg.claimed_until = None
        msg.save(update_fields=["status", "sent_at", "last_error", "next_attempt_at", "claimed_until"])
        _record(msg, outcome, detail, at=t)
        if msg.status == MessageStatus.PENDING:
            _enqueue_task(msg.pk, run_after=msg.next_attempt_at)
        return msg.status


def deliver(message_id: int) -> str:
    """Try to send one message. Returns its status afterwards (or why nothing was done:
    ``not_due``, ``in_progress``, ``missing``). Safe to call any number of times, also
    concurrently: only the worker holding the claim sends, and a sent message is never sent
    again."""
    claimed = _claim(message_id)
    if isinstance(claimed, str):
        return claimed
    msg = claimed
    try:
        refusal = audience.refusal_for(msg)
    except Exception as err:  # a broken check is no consent; try again later
        log.exception("send-time check for message %s failed", msg.pk)
        return _finish(msg.pk, outcome=AttemptOutcome.RETRY, detail=f"send-time check failed: {type(err).__name__}: {err}")
    if refusal:
        return _finish(msg.pk, outcome=AttemptOutcome.SUPPRESSED, detail=refusal)
    try:
        _send(msg)
    except Exception as err:  # any transport failure is retried with backoff, unless it is final
        detail = f"{type(err).__name__}: {err}"
        return _finish(msg.pk, outcome=AttemptOutcome.FAILED if is_permanent(err) else AttemptOutcome.RETRY, detail=detail)
    return _finish(msg.pk, outcome=AttemptOutcome.SENT, detail="accepted by the mail server")


def requeue_due(*, limit: int = 500) -> int:
    """Enqueue delivery for messages whose task was lost: pending ones that are overdue and have
    no waiting task (a task row was pruned, or ran early and found the message not due), and
    ones whose claim ran out because their worker died mid-send. The worker calls this
    periodically; calling it more often only costs a query. Returns how many were enqueued."""
    t = now()
    rows = list(
        OutboxMessage.objects.filter(
            Q(status=MessageStatus.PENDING, next_attempt_at__lte=t - requeue_grace())
            | Q(status=MessageStatus.SENDING, claimed_until__lte=t)
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", "task_id")[:limit]
    )
    waiting = _waiting_task_ids([task_id for _, task_id in rows if task_id])
    count = 0
    for pk, task_id in rows:
        if task_id and task_id in waiting:
            continue  # its task is queued, the worker is just busy
        with transaction.atomic():
            _enqueue_task(pk)
        count += 1
    if count:
        log.info("re-enqueued %s outbox message(s) whose delivery task was lost", count)
    return count


def _waiting_task_ids(task_ids: list[str]) -> set[str]:
    """Those of ``task_ids`` that are still queued. Only the database backend can tell; with
    any other backend every task counts as lost (a duplicate task is harmless)."""
    if not task_ids:
        return set()
    from django_tasks_db.backend import DatabaseBackend
    from django_tasks_db.models import DBTaskResult

    from .tasks import deliver_message

    if not isinstance(deliver_message.get_backend(), DatabaseBackend):
        return set()
    ids = DBTaskResult.objects.filter(id__in=task_ids, status="READY").values_list("id", flat=True)
    return {str(i) for i in ids}
