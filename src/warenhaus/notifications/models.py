"""The outbox: every message the shop sends is a row here first, written in the same
transaction as the event that caused it, and every delivery attempt is recorded."""

from django.db import models


class MessageStatus(models.TextChoices):
    PENDING = "pending", "pending"
    SENT = "sent", "sent"
    FAILED = "failed", "failed"  # gave up after the last retry; a human looks


class OutboxMessage(models.Model):
    kind = models.CharField(max_length=60, db_index=True)
    to_email = models.EmailField()
    subject = models.CharField(max_length=300)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    language = models.CharField(max_length=8, default="de")
    #: at most one message per key, e.g. "order_confirmation:WH-ABCD2345"
    dedupe_key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    related_object = models.CharField(max_length=120, blank=True, db_index=True)
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class DeliveryAttempt(models.Model):
    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField()
    ok = models.BooleanField()
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
