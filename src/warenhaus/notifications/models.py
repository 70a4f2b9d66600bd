"""The outbox: every message the shop sends is a row here first, written in the same
transaction as the event that caused it, and every delivery attempt is recorded.

A row holds what to render (``template``, ``context`` with references to the domain objects,
``language``), not the rendered mail: the worker renders it when it sends, and keeps subject and
bodies on the row once the message has gone out, so the console and later corrections show
exactly what the recipient got. A row without a template carries its rendering already and is
sent as it is.

A message moves ``pending -> sending -> sent``. ``sending`` is a lease: a worker claims the row
(committed) before it talks to the mail server and records the outcome afterwards, so no database
lock is held during network I/O and a second worker never sends a claimed message. A lease that
runs out means the worker died mid-send; the message is picked up again. ``failed`` (retries
exhausted or the server refused for good) and ``suppressed`` (a send-time check said no) are
final and wait for a human.
"""

from django.db import models
from django.db.models import Q


class MessageStatus(models.TextChoices):
    PENDING = "pending", "pending"
    SENDING = "sending", "sending"
    SENT = "sent", "sent"
    FAILED = (
        "failed",
        "failed",
    )  # gave up after the last retry or a permanent refusal; a human looks
    SUPPRESSED = "suppressed", "suppressed"  # a send-time check refused this recipient


class OutboxMessage(models.Model):
    kind = models.CharField(max_length=60, db_index=True)
    to_email = models.EmailField()
    #: ``notifications/<template>_subject.txt``, ``_body.txt`` and ``_body.html``; empty for a
    #: message whose subject and bodies were written directly
    template = models.CharField(max_length=100, blank=True, default="", db_default="")
    #: the template context as JSON, model instances as references (:mod:`.context`)
    context = models.JSONField(default=dict, db_default={}, blank=True)
    #: what went out: filled in when the message is sent (or up front for a row without template)
    subject = models.CharField(max_length=300, blank=True, default="")
    body_text = models.TextField(blank=True, default="")
    body_html = models.TextField(blank=True, default="")
    language = models.CharField(max_length=8, default="de")
    #: at most one message per key, e.g. "order_confirmation:WH-ABCD2345"
    dedupe_key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    related_object = models.CharField(max_length=120, blank=True, db_index=True)
    status = models.CharField(
        max_length=10, choices=MessageStatus.choices, default=MessageStatus.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    #: while ``sending``: when the claiming worker's lease runs out
    claimed_until = models.DateTimeField(null=True, blank=True)
    #: the id of the latest delivery task enqueued for this message (to tell a lost task from a waiting one)
    task_id = models.CharField(max_length=64, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outbox_status_due_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in MessageStatus]), name="outbox_status_known"
            ),
            models.CheckConstraint(
                condition=~Q(status=MessageStatus.SENT) | Q(sent_at__isnull=False),
                name="outbox_sent_has_time",
            ),
        ]

    def __str__(self):
        return f"{self.kind} to {self.to_email} ({self.status})"


class AttemptOutcome(models.TextChoices):
    SENT = "sent", "sent"
    RETRY = "retry", "transient failure, retry scheduled"
    FAILED = "failed", "failed for good"
    INTERRUPTED = "interrupted", "worker stopped during delivery"
    SUPPRESSED = "suppressed", "refused by a send-time check"


class DeliveryAttempt(models.Model):
    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField(default=0, help_text="1 for the first attempt, and so on.")
    at = models.DateTimeField()
    ok = models.BooleanField()
    outcome = models.CharField(
        max_length=12, choices=AttemptOutcome.choices, default=AttemptOutcome.SENT
    )
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
