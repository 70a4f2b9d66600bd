"""The port through which a cart asks about its discount codes.

Checkout holds the codes a shopper applied, shows what they take off and checks them once more
at checkout; what a code is worth is not its business. The app that knows (promotions) registers
its implementation of :class:`Discounts` in its ``AppConfig.ready``; without one, no code
applies and every cart is priced without discounts.

The rows of the codes applied to a cart belong to the implementation (promotions'
``CartVoucher``): each names one of its codes, so checkout's tables need nothing from above.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from django.db.models import BooleanField, Value

from warenhaus.core.errors import DomainError
from warenhaus.core.money import ZERO


class AppliedCode(Protocol):
    """One code on a cart as evaluated: what it takes off, or why it does not apply."""

    cart_voucher_id: int
    amount: Decimal
    error: DomainError | None

    def as_json(self) -> dict: ...

    def problem(self) -> dict: ...


@dataclass
class Evaluation:
    """The codes of a cart in the order they were applied, each with its discount or refusal."""

    applied: list[Any] = field(default_factory=list)

    @property
    def discount(self) -> Decimal:
        return sum((a.amount for a in self.applied if a.error is None), ZERO)

    @property
    def errors(self) -> list[DomainError]:
        return [a.error for a in self.applied if a.error is not None]

    def rows(self) -> list[dict]:
        return [a.as_json() for a in self.applied]

    def problems(self) -> list[dict]:
        return [a.problem() for a in self.applied if a.error is not None]


@dataclass
class Candidate:
    """A code someone typed for a cart, found and checked. ``on_cart``: the cart holds it
    already (applying it again changes nothing). ``ref``: the implementation's own handle."""

    ref: Any
    on_cart: bool = False


class Discounts(Protocol):
    """What checkout asks about a cart's codes. Every method runs inside the caller's
    transaction, under the cart's row lock where the caller holds it."""

    def has_codes(self, cart_id: str) -> Any:
        """An SQL expression (for the cart's line query): does the cart hold any code?"""

    def evaluate(self, *, cart, lines, subtotal: Decimal) -> Evaluation:
        """The cart view's evaluation: no locks, channel and customer not yet known."""

    def check_for_checkout(
        self, *, evaluation: Evaluation, lines, subtotal: Decimal, user_id, email: str, channel: str
    ) -> Evaluation:
        """Evaluate again with everything checkout knows; raise the first refusal."""

    def find(self, *, cart, code: str, channel: str, has_codes: bool | None) -> Candidate:
        """The typed code, checked for this cart (raises why it does not apply)."""

    def attach(
        self, *, cart, candidate: Candidate, lines, subtotal: Decimal, channel: str
    ) -> Evaluation:
        """Put a found code on the cart (unless it is there); the cart's evaluation after it."""

    def detach(self, *, cart, code: str) -> bool:
        """Take a code off the cart (by the code or its id in the cart view); False if absent."""

    def move(self, *, from_cart_id: str, to_cart_id: str) -> None:
        """At login: the anonymous cart's codes join the shopper's cart."""


class NoDiscounts:
    """No code applies: the port's answer while no discount app is installed."""

    def has_codes(self, cart_id: str) -> Any:
        return Value(False, output_field=BooleanField())

    def evaluate(self, *, cart, lines, subtotal: Decimal) -> Evaluation:
        return Evaluation()

    def check_for_checkout(self, *, evaluation: Evaluation, **context) -> Evaluation:
        return evaluation

    def find(self, *, cart, code: str, channel: str, has_codes: bool | None) -> Candidate:
        raise DomainError("There is no voucher with this code.", code="voucher_unknown", status=422)

    def attach(self, *, cart, candidate: Candidate, **context) -> Evaluation:
        return Evaluation()

    def detach(self, *, cart, code: str) -> bool:
        return False

    def move(self, *, from_cart_id: str, to_cart_id: str) -> None:
        return None


_registered: Discounts = NoDiscounts()


def register(implementation: Discounts) -> Discounts:
    """Make ``implementation`` the port's answer; returns the one it replaces (for tests)."""
    global _registered
    previous, _registered = _registered, implementation
    return previous


def discounts() -> Discounts:
    """The registered implementation (:class:`NoDiscounts` until an app registers one)."""
    return _registered
