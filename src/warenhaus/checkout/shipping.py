"""Shipping methods and their gross prices (German parcel rates, free standard shipping from a
basket value)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext_lazy as _

from warenhaus.core.errors import ValidationFailed


@dataclass(frozen=True)
class ShippingMethod:
    code: str
    label: str
    price: Decimal
    free_from: Decimal | None = None

    def cost(self, subtotal: Decimal) -> Decimal:
        if self.free_from is not None and subtotal >= self.free_from:
            return Decimal("0.00")
        return self.price


METHODS = {
    "standard": ShippingMethod(
        "standard", _("Standard (2–4 working days)"), Decimal("4.90"), Decimal("50.00")
    ),
    "express": ShippingMethod("express", _("Express (next working day)"), Decimal("12.90")),
}
DEFAULT = "standard"


def method(code: str | None) -> ShippingMethod:
    m = METHODS.get(code or DEFAULT)
    if m is None:
        raise ValidationFailed(
            f"Unknown shipping method '{code}'. Choose one of: {', '.join(METHODS)}.",
            code="invalid_shipping_method",
        )
    return m
