"""The states of a payment and of a payment action, as stored (``orders.Payment``,
``orders.PaymentAction``)."""

from django.db import models


class PaymentStatus(models.TextChoices):
    AUTHORIZED = "authorized", "authorized"  # money reserved on the card
    PENDING = "pending", "pending"  # invoice: paid after delivery
    CAPTURED = "captured", "captured"
    VOIDED = "voided", "voided"
    REFUNDED = "refunded", "refunded"


class ActionKind(models.TextChoices):
    VOID = "void", "void"
    REFUND = "refund", "refund"


class ActionStatus(models.TextChoices):
    PENDING = "pending", "pending"
    DONE = "done", "done"
    FAILED = "failed", "failed"
