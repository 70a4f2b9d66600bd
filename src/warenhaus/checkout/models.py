"""Carts. A cart's id is an unguessable string and is the anonymous shopper's capability."""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q


def new_cart_id() -> str:
    return secrets.token_urlsafe(24)


class CartStatus(models.TextChoices):
    OPEN = "open", "open"
    ORDERED = "ordered", "ordered"
    MERGED = "merged", "merged"


class Cart(models.Model):
    id = models.CharField(primary_key=True, max_length=64, default=new_cart_id, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="carts",
    )
    status = models.CharField(max_length=10, choices=CartStatus.choices, default=CartStatus.OPEN)
    shipping_method = models.CharField(max_length=20, default="standard")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["user", "status"])]


class CartLine(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="lines")
    variant = models.ForeignKey("catalog.Variant", on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField()
    price_when_added = models.DecimalField(
        max_digits=10, decimal_places=2, help_text="To tell the shopper when the price changed."
    )
    deal_hold_id = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="The flash-deal hold these units are (warenhaus.deals.Hold): deal price and stock guaranteed until its deadline.",
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["cart", "variant"], name="cart_line_unique_variant"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="cart_line_quantity_positive"),
        ]
