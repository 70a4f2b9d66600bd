"""Cart totals with German VAT. Prices are gross; VAT is extracted per rate, and the shipping
charge's VAT is split over the rates in proportion to the goods (it shares their fate)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from warenhaus.core.money import ZERO, cents, money_json, split_proportionally, vat_of_gross


@dataclass
class PricedLine:
    variant_id: int
    sku: str
    title: str
    unit_price: Decimal
    quantity: int
    vat_rate: Decimal
    product_id: int | None = None
    category_id: int | None = None

    @property
    def line_total(self) -> Decimal:
        return cents(self.unit_price * self.quantity)


@dataclass
class Totals:
    subtotal: Decimal = ZERO
    discount: Decimal = ZERO
    shipping: Decimal = ZERO
    vat: Decimal = ZERO
    total: Decimal = ZERO
    vat_breakdown: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "subtotal": money_json(self.subtotal),
            "discount": money_json(self.discount),
            "shipping": money_json(self.shipping),
            "vat": money_json(self.vat),
            "vat_breakdown": [
                {"rate": r["rate"], "amount": money_json(Decimal(r["amount"]))}
                for r in self.vat_breakdown
            ],
            "total": money_json(self.total),
        }


def compute(lines: list[PricedLine], *, shipping_cost: Decimal, discount: Decimal = ZERO) -> Totals:
    subtotal = sum((line.line_total for line in lines), ZERO)
    if not lines:
        return Totals()
    discount = min(cents(discount), subtotal)
    by_rate: dict[Decimal, Decimal] = {}
    for line in lines:
        by_rate[line.vat_rate] = by_rate.get(line.vat_rate, ZERO) + line.line_total
    # A discount lowers the taxable amount of each rate in proportion; so does shipping raise it.
    discount_share = split_proportionally(discount, by_rate)
    shipping_share = split_proportionally(shipping_cost, by_rate)
    breakdown = []
    vat_total = ZERO
    for rate in sorted(by_rate, reverse=True):
        gross = by_rate[rate] - discount_share[rate] + shipping_share[rate]
        vat = vat_of_gross(gross, rate)
        vat_total += vat
        breakdown.append({"rate": f"{rate:.0f}", "amount": f"{vat:.2f}", "gross": f"{gross:.2f}"})
    total = subtotal - discount + shipping_cost
    return Totals(
        subtotal=subtotal,
        discount=discount,
        shipping=cents(shipping_cost),
        vat=vat_total,
        total=total,
        vat_breakdown=breakdown,
    )
