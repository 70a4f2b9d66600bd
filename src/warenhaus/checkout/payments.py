"""Payment gateways behind one interface.

Two are built in: ``invoice`` (Kauf auf Rechnung: nothing to authorise, the shopper pays after
delivery) and ``test``, a card simulator whose outcome the caller chooses with a token
(``approve``, ``decline``, ``timeout``) so tests and demos can exercise every path. A real
gateway implements the same four methods and is registered in ``GATEWAYS``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal

from warenhaus.core.errors import PaymentFailed, ValidationFailed


class PaymentTimeout(PaymentFailed):
    code = "payment_timeout"
    title = "The payment provider did not answer in time"
    retryable = True


@dataclass
class Authorization:
    reference: str
    status: str  # "authorized" (money reserved) or "pending" (invoice: paid later)


class Gateway:
    name = ""

    def authorize(self, *, amount: Decimal, order_number: str, token: str = "") -> Authorization:
        raise NotImplementedError

    def void(self, *, reference: str) -> None:
        """Release an authorisation that was not used (the order did not come about)."""

    def refund(self, *, reference: str, amount: Decimal) -> None:
        """Give money back for an order that was paid."""


class InvoiceGateway(Gateway):
    name = "invoice"

    def authorize(self, *, amount, order_number, token=""):
        return Authorization(reference=f"INV-{order_number}", status="pending")


class TestCardGateway(Gateway):
    """A card simulator. Outcomes are chosen by token; anything else is approved."""

    name = "test"
    voided: list[str] = []
    refunded: list[tuple[str, Decimal]] = []

    def authorize(self, *, amount, order_number, token=""):
        outcome = (token or "approve").strip().lower()
        if outcome == "decline":
            raise PaymentFailed("The card was declined. Please use another payment method.", code="payment_declined")
        if outcome == "timeout":
            raise PaymentTimeout("The card provider did not answer in time. Nothing was charged; please try again.")
        return Authorization(reference=f"TEST-{secrets.token_hex(8)}", status="authorized")

    def void(self, *, reference):
        TestCardGateway.voided.append(reference)

    def refund(self, *, reference, amount):
        TestCardGateway.refunded.append((reference, amount))


GATEWAYS: dict[str, Gateway] = {"invoice": InvoiceGateway(), "test": TestCardGateway()}


def gateway(name: str) -> Gateway:
    gw = GATEWAYS.get(name)
    if gw is None:
        raise ValidationFailed(f"Unknown payment method '{name}'. Choose one of: {', '.join(GATEWAYS)}.", code="invalid_payment_method")
    return gw
