"""Orders as sold: lines keep the title and price of the moment of sale; every status change is
an event; payments record what the gateway said."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from warenhaus.core.channels import Channel  # defined once for the shop; importable from here


class OrderStatus(models.TextChoices):
    PLACED = "placed", _("placed")
    AWAITING_PAYMENT = "awaiting_payment", _("awaiting payment")
    PAID = "paid", _("paid")
    ON_HOLD = "on_hold", _("on hold")
    SHIPPED = "shipped", _("shipped")
    DELIVERED = "delivered", _("delivered")
    CANCELLED = "cancelled", _("cancelled")
    REFUNDED = "refunded", _("refunded")


class Order(models.Model):
    number = models.CharField(max_length=20, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
    )
    email = models.EmailField()
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.PLACED, db_index=True
    )
    held_from = models.CharField(
        max_length=20, blank=True, help_text="The status to return to when a hold is released."
    )
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.WEB)
    shipping_address = models.JSONField()
    shipping_method = models.CharField(max_length=20)
    payment_method = models.CharField(max_length=20)
    currency = models.CharField(max_length=3, default="EUR")
    subtotal = models.DecimalField(max_digits=12, decimal_places=2)
    discount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    shipping = models.DecimalField(max_digits=12, decimal_places=2)
    vat = models.DecimalField(max_digits=12, decimal_places=2)
    vat_breakdown = models.JSONField(default=list)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    cart_id = models.CharField(max_length=64, blank=True, db_index=True)
    placed_at = models.DateTimeField(db_index=True)
    language = models.CharField(max_length=8, default="de")

    class Meta:
        ordering = ["-placed_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_not_negative"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in OrderStatus]), name="order_status_known"
            ),
        ]

    def __str__(self):
        return self.number

    @property
    def audit_key(self):
        return self.number


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    variant = models.ForeignKey("catalog.Variant", on_delete=models.PROTECT, related_name="+")
    sku = models.CharField(max_length=64)
    title = models.CharField(max_length=400)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    quantity = models.PositiveIntegerField()
    vat_rate = models.DecimalField(max_digits=4, decimal_places=2)
    line_total = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_positive")
        ]


class OrderEvent(models.Model):
    """One transition of an order, with who made it and why."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]


class Payment(models.Model):
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    gateway = models.CharField(max_length=20)
    reference = models.CharField(max_length=100)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    status = models.CharField(max_length=20)  # authorized, pending, voided, refunded, captured
    refunded_amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(refunded_amount__lte=models.F("amount")),
                name="payment_refund_within_amount",
            )
        ]


class PaymentAction(models.Model):
    """Money going back to a customer (void an authorisation, refund a capture), written in the
    transaction that decided it (a cancellation) and carried out by the worker after that
    transaction committed, with the action's key as the gateway's idempotency key. So a
    cancellation that rolls back never reaches the gateway, and one that commits reaches it
    exactly once however often the worker retries."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="actions")
    kind = models.CharField(max_length=10)  # void | refund
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    key = models.CharField(max_length=100, unique=True, help_text="The gateway's idempotency key.")
    status = models.CharField(max_length=10, default="pending")  # pending | done | failed
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["void", "refund"]), name="payment_action_kind_known"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "done", "failed"]),
                name="payment_action_status_known",
            ),
        ]
