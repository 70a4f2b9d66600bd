"""Writing messages to the outbox and delivering them.

``enqueue_mail`` must be called inside the transaction of the event it reports. It renders
nothing: it writes what to render (template, language, and the context as JSON with references
to the domain objects, :mod:`.context`) and the delivery task, so a template bug cannot fail the
event and the event's transaction pays only for two inserts. The task's id is chosen before the
message is written (:mod:`.tasks`), so the row is complete in one insert; django-tasks' database
backend writes the task row in the same transaction, and both commit or roll back with the event.
Only a message with a ``dedupe_key`` needs a savepoint around its insert, so that a duplicate
leaves the caller's transaction usable.

``deliver`` sends one message in three short steps, so that no database lock is held while we
render or talk to the mail server (on SQLite a held write lock would stall the whole shop for as
long as a dead server takes to time out):

1. claim: lock the row, check it is due and pending, mark it ``sending`` with a lease, commit;
2. outside any transaction: load the referenced objects again and render the mail in the
   recipient's language (:func:`render_mail`), run the send-time checks (:mod:`.audience`) on
   the rendered message, and send it;
3. record: the attempt and the outcome (sent, with the subject and bodies that went out; or a
   retry with exponential backoff, with its task enqueued in the same transaction; or failed
   for good).

A mail that cannot be rendered is a bug or a lost object, and retrying changes neither: a
template error, or a referenced object that no longer exists, fails the message at once, with
the reason (and the tail of the traceback) recorded as its attempt and logged at ERROR. Only a
database that cannot be reached while rendering counts as transient and is retried.

A second worker that gets the same message finds it claimed and leaves it alone, and a sent
message is never claimed again. The one window left is a worker that dies after the server
accepted the message and before step 3 commits: the lease runs out, ``requeue_due`` picks the
message up again, and it is rendered again and sent with the same Message-ID so the receiving
side can drop the duplicate. Losing a message is worse than that.
"""

from __future__ import annotations

import logging
import re
import smtplib
import traceback
from datetime import timedelta
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import translation

from warenhaus.core.clock import now

from . import audience, mails
from . import context as mail_context
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
    """How long a claim lasts. Longer than rendering and any SMTP conversation can take (each
    socket operation may wait EMAIL_TIMEOUT), so a live worker never loses its claim to another."""
    timeout = getattr(settings, "EMAIL_TIMEOUT", None) or 30
    return timedelta(seconds=int(getattr(settings, "OUTBOX_LEASE_SECONDS", max(120, 6 * timeout))))


def requeue_grace() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "OUTBOX_REQUEUE_GRACE_SECONDS", 60)))


# --- writing --------------------------------------------------------------------------------


def _language(language: str) -> str:
    codes = [code for code, _ in settings.LANGUAGES]
    language = (language or settings.LANGUAGE_CODE)[:8]
    return (
        language
        if language in codes
        else language[:2]
        if language[:2] in codes
        else settings.LANGUAGE_CODE
    )


def render_mail(*, template: str, context: dict, language: str) -> tuple[str, str, str]:
    """Subject, plain text and HTML of ``notifications/<template>_*`` in ``language``."""
    with translation.override(language):
        ctx = mails.context_for(template, context)
        subject = " ".join(_render_part(f"notifications/{template}_subject.txt", ctx).split())
        # Templates keep their tags readable; the blank lines that leaves are squeezed here.
        body_text = (
            re.sub(
                r"\n{3,}", "\n\n", _render_part(f"notifications/{template}_body.txt", ctx)
            ).strip()
            + "\n"
        )
        try:
            body_html = _render_part(f"notifications/{template}_body.html", ctx)
        except (
            TemplateDoesNotExist
        ):  # an HTML part is optional; any other error is a bug and raises
            body_html = ""
    return subject, body_text, body_html


def _render_part(name: str, ctx: dict) -> str:
    try:
        return render_to_string(name, ctx)
    except TemplateDoesNotExist:
        raise
    except Exception as err:
        err.add_note(f"while rendering {name}")  # the traceback alone does not name the file
        raise


def enqueue_mail(
    *,
    kind: str,
    to_email: str,
    template: str,
    context: dict,
    language: str = "de",
    dedupe_key: str | None = None,
    related_object: str = "",
) -> OutboxMessage | None:
    """Put a mail in the outbox with its delivery task; the worker renders it in ``language``
    when it sends it. ``context`` holds model instances (stored as references, loaded again at
    send time) and plain data. Returns None if a message with the same ``dedupe_key`` exists
    already (each is sent once)."""
    from .tasks import new_task_id

    task_id = new_task_id()
    msg = OutboxMessage(
        kind=kind,
        to_email=to_email,
        template=template,
        context=mail_context.serialize(context),
        language=_language(language),
        dedupe_key=dedupe_key,
        related_object=related_object[:120],
        next_attempt_at=now(),
        task_id=str(task_id),
    )
    # Inside the caller's transaction this costs no statement; outside one it still keeps the
    # message and its task together.
    with transaction.atomic(savepoint=False):
        if dedupe_key is None:
            msg.save(force_insert=True)
        else:
            try:
                with transaction.atomic():  # a duplicate must not break the caller's transaction
                    msg.save(force_insert=True)
            except IntegrityError:
                if OutboxMessage.objects.filter(dedupe_key=dedupe_key).exists():
                    return None
                raise
        msg.task_id = _enqueue_task(msg.pk, task_id=task_id)
    return msg


def enqueue_mails(mails: list[dict]) -> int:
    """Many mails at once, each exactly as :func:`enqueue_mail` would write it (same keyword
    arguments per entry), in a fixed number of statements: a remediation tells tens of thousands
    of customers. Entries whose ``dedupe_key`` exists already (or repeats in ``mails``) are
    skipped. Returns how many were written. Call inside a transaction; a concurrent writer of the
    same ``dedupe_key`` makes it raise IntegrityError (the caller's transaction retries)."""
    from .tasks import enqueue_deliveries, new_task_id

    keys = [m["dedupe_key"] for m in mails if m.get("dedupe_key")]
    seen = (
        set(OutboxMessage.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True))
        if keys
        else set()
    )
    rows = []
    at = now()
    for m in mails:
        key = m.get("dedupe_key")
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        rows.append(
            OutboxMessage(
                kind=m["kind"],
                to_email=m["to_email"],
                template=m["template"],
                context=mail_context.serialize(m["context"]),
                language=_language(m.get("language", "de")),
                dedupe_key=key,
                related_object=(m.get("related_object") or "")[:120],
                next_attempt_at=at,
                task_id=str(new_task_id()),
            )
        )
    if not rows:
        return 0
    with transaction.atomic(savepoint=False):
        OutboxMessage.objects.bulk_create(rows, batch_size=1000)
        enqueue_deliveries([(msg.pk, msg.task_id) for msg in rows])
    return len(rows)


def _enqueue_task(message_id: int, *, task_id=None, run_after=None) -> str:
    """Enqueue a delivery task and make sure the message names it. ``task_id`` is the id the
    caller has already written on the message; without one (or if the backend names its tasks
    itself) the message is updated. Call inside a transaction."""
    from .tasks import enqueue_delivery, new_task_id

    got = enqueue_delivery(message_id, task_id=task_id or new_task_id(), run_after=run_after)
    if task_id is None or got != str(task_id):
        OutboxMessage.objects.filter(pk=message_id).update(task_id=got)
    return got


# --- delivering -----------------------------------------------------------------------------


def _record(msg: OutboxMessage, outcome: str, detail: str, at=None) -> None:
    DeliveryAttempt.objects.create(
        message=msg,
        number=msg.attempts,
        at=at or now(),
        ok=outcome == AttemptOutcome.SENT,
        outcome=outcome,
        detail=detail[:2000],
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
            _record(
                msg,
                AttemptOutcome.INTERRUPTED,
                "The worker stopped during delivery; outcome unknown. Sending again with the same Message-ID.",
            )
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
        subject=msg.subject,
        body=msg.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[msg.to_email],
        headers={
            "Message-ID": _message_id(msg),
            "X-Warenhaus-Message": str(msg.pk),
            "X-Warenhaus-Kind": msg.kind,
            "Content-Language": msg.language,
        },
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


def _finish(
    message_id: int,
    *,
    outcome: str,
    detail: str,
    rendered: tuple[str, str, str] | None = None,
    exc_info: BaseException | None = None,
) -> str:
    """Step 3: record the attempt and move the message on. ``rendered`` is what went out, kept
    on a sent message."""
    with transaction.atomic():
        msg = OutboxMessage.objects.select_for_update().get(pk=message_id)
        t = now()
        if msg.status == MessageStatus.SENT and outcome != AttemptOutcome.SENT:
            return msg.status  # cannot happen while leases hold; never undo a recorded send
        fields = ["status", "sent_at", "last_error", "next_attempt_at", "claimed_until"]
        if outcome == AttemptOutcome.SENT:
            msg.status, msg.sent_at, msg.last_error = MessageStatus.SENT, t, ""
            if rendered is not None:
                msg.subject, msg.body_text, msg.body_html = (
                    mails.redact(msg.template, part) for part in rendered
                )
                fields += ["subject", "body_text", "body_html"]
        elif outcome == AttemptOutcome.SUPPRESSED:
            msg.status, msg.last_error = MessageStatus.SUPPRESSED, detail
        else:
            msg.last_error = detail
            if outcome == AttemptOutcome.RETRY and msg.attempts >= max_attempts():
                outcome = AttemptOutcome.FAILED
            if outcome == AttemptOutcome.FAILED:
                msg.status = MessageStatus.FAILED
                summary = (
                    detail.partition("\n")[0] if exc_info else detail
                )  # the log has the whole traceback
                log.error(
                    "giving up on message %s (%s to %s) after %s attempts: %s",
                    msg.pk,
                    msg.kind,
                    msg.to_email,
                    msg.attempts,
                    summary,
                    exc_info=exc_info,
                )
            else:
                from .tasks import new_task_id

                msg.status = MessageStatus.PENDING
                msg.next_attempt_at = t + backoff_delay(msg.attempts)
                msg.task_id = str(new_task_id())  # the retry's task, written with the row
                fields.append("task_id")
                log.warning(
                    "message %s attempt %s failed, next at %s: %s",
                    msg.pk,
                    msg.attempts,
                    msg.next_attempt_at.isoformat(),
                    detail,
                )
        msg.claimed_until = None
        msg.save(update_fields=fields)
        _record(msg, outcome, detail, at=t)
        if msg.status == MessageStatus.PENDING:
            _enqueue_task(msg.pk, task_id=msg.task_id, run_after=msg.next_attempt_at)
        return msg.status


def _render(msg: OutboxMessage) -> tuple[str, str, str]:
    """Step 2a: the message's subject and bodies, rendered now from the objects as they are.
    A message without a template was written ready to send."""
    if not msg.template:
        return msg.subject, msg.body_text, msg.body_html
    ctx = mail_context.resolve(msg.context or {})
    subject, body_text, body_html = render_mail(
        template=msg.template, context=ctx, language=msg.language
    )
    return subject[:300], body_text, body_html  # what is sent is what the row can keep


def _failure(err: BaseException, *, frames: int = 4) -> str:
    """The exception and the tail of its traceback, for the attempt log (kept to 2,000
    characters: the exception line comes first)."""
    notes = "".join(f" ({note})" for note in getattr(err, "__notes__", ()))
    tail = "".join(traceback.format_exception(err, limit=-frames))
    return f"{type(err).__name__}: {err}{notes}\n\n{tail}"


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
        rendered = _render(msg)
    except mail_context.MissingObject as err:  # it will not come back
        return _finish(
            msg.pk, outcome=AttemptOutcome.FAILED, detail=f"cannot render {msg.template!r}: {err}"
        )
    except (OperationalError, InterfaceError) as err:  # the database, not the mail: try again later
        return _finish(
            msg.pk,
            outcome=AttemptOutcome.RETRY,
            detail=f"rendering {msg.template!r} failed: {type(err).__name__}: {err}",
        )
    except Exception as err:  # a bug in a template or a context builder; retrying cannot fix it
        return _finish(
            msg.pk,
            outcome=AttemptOutcome.FAILED,
            detail=f"rendering {msg.template!r} failed: {_failure(err)}",
            exc_info=err,
        )
    msg.subject, msg.body_text, msg.body_html = (
        rendered  # the checks see the mail as it would leave
    )
    try:
        refusal = audience.refusal_for(msg)
    except Exception as err:  # a broken check is no consent; try again later
        log.exception("send-time check for message %s failed", msg.pk)
        return _finish(
            msg.pk,
            outcome=AttemptOutcome.RETRY,
            detail=f"send-time check failed: {type(err).__name__}: {err}",
        )
    if refusal:
        return _finish(msg.pk, outcome=AttemptOutcome.SUPPRESSED, detail=refusal)
    try:
        _send(msg)
    except Exception as err:  # any transport failure is retried with backoff, unless it is final
        detail = f"{type(err).__name__}: {err}"
        return _finish(
            msg.pk,
            outcome=AttemptOutcome.FAILED if is_permanent(err) else AttemptOutcome.RETRY,
            detail=detail,
        )
    return _finish(
        msg.pk, outcome=AttemptOutcome.SENT, detail="accepted by the mail server", rendered=rendered
    )


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
    from django_tasks import TaskResultStatus
    from django_tasks_db.backend import DatabaseBackend
    from django_tasks_db.models import DBTaskResult

    from .tasks import deliver_message

    if not isinstance(deliver_message.get_backend(), DatabaseBackend):
        return set()
    ids = DBTaskResult.objects.filter(id__in=task_ids, status=TaskResultStatus.READY).values_list(
        "id", flat=True
    )
    return {str(i) for i in ids}
