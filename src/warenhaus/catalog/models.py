"""Categories, products and their variants, with gross prices and the history of every price."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q


class VatRate(models.TextChoices):
    STANDARD = "19.00", "19 %"
    REDUCED = "7.00", "7 %"


class Category(models.Model):
    slug = models.SlugField(max_length=120, unique=True)
    name = models.CharField(max_length=120)
    name_en = models.CharField(max_length=120, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "categories"

    def __str__(self):
        return self.name

    def localized_name(self, language: str) -> str:
        return self.name_en if language.startswith("en") and self.name_en else self.name

    def descendant_ids(self) -> list[int]:
        ids, frontier = [self.pk], [self.pk]
        while frontier:
            frontier = list(
                Category.objects.filter(parent_id__in=frontier).values_list("pk", flat=True)
            )
            ids.extend(frontier)
        return ids


class Product(models.Model):
    slug = models.SlugField(max_length=160, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    brand = models.CharField(max_length=100, blank=True)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    vat_rate = models.DecimalField(
        max_digits=4, decimal_places=2, choices=VatRate.choices, default=Decimal("19.00")
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.CheckConstraint(
                condition=Q(vat_rate__in=[Decimal("19.00"), Decimal("7.00")]),
                name="product_vat_rate_known",
            )
        ]

    def __str__(self):
        return self.title

    @property
    def audit_key(self):
        return self.slug


class Variant(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    sku = models.CharField(max_length=64, unique=True)
    title = models.CharField(
        max_length=200,
        blank=True,
        help_text="What tells this variant apart, e.g. '128 GB, Schwarz'.",
    )
    price = models.DecimalField(
        max_digits=10, decimal_places=2, help_text="Gross price in EUR, VAT included."
    )
    is_active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "sku"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="variant_price_positive")
        ]

    def __str__(self):
        return self.sku

    @property
    def audit_key(self):
        return self.sku

    @property
    def display_title(self) -> str:
        return f"{self.product.title} – {self.title}" if self.title else self.product.title


class PriceChange(models.Model):
    """Every price a variant has had, for the audit, for "lowest price of the last 30 days" and
    for the price guardrails."""

    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="price_changes")
    old_price = models.DecimalField(max_digits=10, decimal_places=2, null=True)
    new_price = models.DecimalField(max_digits=10, decimal_places=2)
    changed_at = models.DateTimeField(db_index=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-changed_at", "-id"]
