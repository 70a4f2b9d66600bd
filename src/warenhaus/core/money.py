"""Money: decimal amounts in a currency, and the one place that rounds.

Prices in Warenhaus are gross (VAT included), as German shoppers see them. VAT is extracted from
gross amounts, never added on top, and every rounding goes through :func:`cents`, half up to the
cent as German commercial practice has it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
VAT_RATES = (Decimal("19"), Decimal("7"), Decimal("0"))
MAX_AMOUNT = Decimal("999999.99")
#: what a client means by "a decimal string": plain ASCII digits, at most two decimals, no sign,
#: no exponent, no digit separators
PLAIN_AMOUNT = re.compile(r"[0-9]+(\.[0-9]{1,2})?", re.ASCII)


class MoneyError(ValueError):
    """An amount that is not a valid money value (malformed, negative, too precise, too big)."""


def cents(value: Decimal | int | str) -> Decimal:
    """Round to whole cents, half up."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def parse_amount(raw: object, *, allow_zero: bool = True) -> Decimal:
    """Parse a decimal string such as ``"49.97"`` strictly: no floats, at most two decimals."""
    if isinstance(raw, bool) or isinstance(raw, float):
        raise MoneyError('amount must be a decimal string such as "49.97", not a number')
    text = format(raw, "f") if isinstance(raw, Decimal) else str(raw).strip()
    if text.startswith("-"):
        raise MoneyError("amount must not be negative")
    if not PLAIN_AMOUNT.fullmatch(text):
        if re.fullmatch(r"[0-9]+\.[0-9]{3,}", text, re.ASCII):
            raise MoneyError("amount has more than two decimal places")
        raise MoneyError(f"'{raw}' is not a decimal amount such as \"49.97\"")
    value = Decimal(text)
    if value == 0 and not allow_zero:
        raise MoneyError("amount must be positive")
    if value > MAX_AMOUNT:
        raise MoneyError(f"amount must not exceed {MAX_AMOUNT}")
    return cents(value)


def vat_of_gross(gross: Decimal, rate: Decimal) -> Decimal:
    """The VAT contained in a gross amount at ``rate`` percent."""
    rate = Decimal(rate)
    if rate == 0:
        return ZERO
    return cents(Decimal(gross) * rate / (Decimal(100) + rate))


def split_proportionally(total: Decimal, weights: dict) -> dict:
    """Split ``total`` over ``weights`` in cents, largest remainders first, summing exactly.

    Used for shipping costs, whose VAT follows the goods they ship (German "Nebenleistung").
    """
    total = cents(total)
    if total < 0:
        return {k: -v for k, v in split_proportionally(-total, weights).items()}
    weight_sum = sum((Decimal(w) for w in weights.values()), ZERO)
    if not weights:
        return {}
    if weight_sum == 0:
        keys = list(weights)
        return {k: (total if i == 0 else ZERO) for i, k in enumerate(keys)}
    raw = {k: total * Decimal(w) / weight_sum for k, w in weights.items()}
    floor = {k: v.quantize(CENT, rounding="ROUND_DOWN") for k, v in raw.items()}
    remainder = int((total - sum(floor.values(), ZERO)) / CENT)
    order = sorted(raw, key=lambda k: raw[k] - floor[k], reverse=True)
    for k in order[:remainder]:
        floor[k] += CENT
    return floor


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str = "EUR"

    def as_json(self) -> dict:
        return {"amount": f"{cents(self.amount):.2f}", "currency": self.currency}

    def __str__(self) -> str:  # German formatting for mails and logs
        text = f"{cents(self.amount):,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
        return f"{text} €" if self.currency == "EUR" else f"{text} {self.currency}"


def money_json(amount: Decimal, currency: str = "EUR") -> dict:
    return Money(Decimal(amount), currency).as_json()
