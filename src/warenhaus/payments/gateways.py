"""Payment gateways behind one interface.

Two are built in: ``invoice`` (Kauf auf Rechnung: nothing to authorise, the shopper pays after
delivery) and ``test``, a card simulator whose outcome the caller chooses with a token
(``approve``, ``decline``, ``timeout``) so tests and demos can exercise every path. A real
gateway implements the same methods and is registered in ``GATEWAYS``.

Every authorisation carries an idempotency key: asked twice with the same key, a gateway answers
with the first authorisation instead of charging again, and :meth:`Gateway.find_authorization`
tells whether an authorisation under a key exists (for an attempt whose caller died).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from warenhaus.core.errors import PaymentFailed, ValidationFailed

from .states import PaymentStatus


class PaymentTimeout(PaymentFailed):
    code = "payment_timeout"
    title = "The payment provider did not answer in time"
    retryable = True


@dataclass
class Authorization:
    reference: str
    status: str  # PaymentStatus.AUTHORIZED (money reserved) or PaymentStatus.PENDING (invoice)


class Gateway:
    name = ""
    #: True when authorising asks nobody over the network (the answer is computed here), so it
    #: may happen inside the transaction that reserves the stock
    answers_locally = False

    def authorize(
        self, *, amount: Decimal, order_number: str, token: str = "", idempotency_key: str = ""
    ) -> Authorization:
        raise NotImplementedError

    def find_authorization(self, *, idempotency_key: str) -> Authorization | None:
        """The authorisation given under ``idempotency_key``, or None if there is none (the
        request never arrived, or was declined)."""
        return None

    def fingerprint(self, token: str = "") -> str:
        """A stable identifier of the payment instrument behind ``token`` (the same card gives
        the same fingerprint whoever uses it, as card providers report it), or "" when the
        method has none (invoice). Flash deals count their per-household limit on it."""
        return ""

    def void(self, *, reference: str, idempotency_key: str = "") -> None:
        """Release an authorisation that was not used (the order did not come about, or was
        cancelled). A repeat with the same ``idempotency_key`` must do nothing more."""

    def refund(self, *, reference: str, amount: Decimal, idempotency_key: str = "") -> None:
        """Give money back for an order that was paid. A repeat with the same
        ``idempotency_key`` must do nothing more."""


class InvoiceGateway(Gateway):
    name = "invoice"
    answers_locally = True

    def authorize(self, *, amount, order_number, token="", idempotency_key=""):
        return Authorization(reference=f"INV-{order_number}", status=PaymentStatus.PENDING)


class TestCardGateway(Gateway):
    """A card simulator. Outcomes are chosen by token; anything else is approved. A token
    ``<outcome>:<card>`` names the simulated card too (``approve:4242-0001``), which gives it a
    fingerprint. Setting ``TEST_CARD_DELAY_SECONDS`` makes every authorisation take that long,
    as a provider across the network does."""

    name = "test"
    voided: list[str] = []
    refunded: list[tuple[str, Decimal]] = []
    #: idempotency keys seen, as a real provider remembers them
    keys: set[str] = set()
    #: authorisations given, by idempotency key; ``charges`` lists every new one (key, amount)
    authorizations: dict[str, Authorization] = {}
    charges: list[tuple[str, Decimal]] = []
    _lock = threading.Lock()

    def authorize(self, *, amount, order_number, token="", idempotency_key=""):
        delay = float(getattr(settings, "TEST_CARD_DELAY_SECONDS", 0) or 0)
        if delay > 0:
            time.sleep(delay)
        outcome = (token or "approve").split(":", 1)[0].strip().lower()
        if outcome == "decline":
            raise PaymentFailed(
                "The card was declined. Please use another payment method.", code="payment_declined"
            )
        if outcome == "timeout":
            raise PaymentTimeout(
                "The card provider did not answer in time. Nothing was charged; please try again."
            )
        with TestCardGateway._lock:
            known = TestCardGateway.authorizations.get(idempotency_key) if idempotency_key else None
            if known is not None:
                return known
            auth = Authorization(
                reference=f"TEST-{secrets.token_hex(8)}", status=PaymentStatus.AUTHORIZED
            )
            if idempotency_key:
                TestCardGateway.authorizations[idempotency_key] = auth
            TestCardGateway.charges.append((idempotency_key, amount))
            return auth

    def find_authorization(self, *, idempotency_key):
        return TestCardGateway.authorizations.get(idempotency_key)

    def fingerprint(self, token=""):
        card = (token or "").split(":", 1)[1].strip() if ":" in (token or "") else ""
        return "test-" + hashlib.sha256(card.encode()).hexdigest()[:24] if card else ""

    def void(self, *, reference, idempotency_key=""):
        if idempotency_key and idempotency_key in TestCardGateway.keys:
            return
        TestCardGateway.keys.add(idempotency_key) if idempotency_key else None
        TestCardGateway.voided.append(reference)

    def refund(self, *, reference, amount, idempotency_key=""):
        if idempotency_key and idempotency_key in TestCardGateway.keys:
            return
        TestCardGateway.keys.add(idempotency_key) if idempotency_key else None
        TestCardGateway.refunded.append((reference, amount))


GATEWAYS: dict[str, Gateway] = {"invoice": InvoiceGateway(), "test": TestCardGateway()}


def enabled() -> list[str]:
    """The payment methods this deployment offers (setting ``PAYMENT_METHODS``). The test card
    approves anything, so it is off unless switched on (the demo and the tests do)."""
    return [m for m in getattr(settings, "PAYMENT_METHODS", ["invoice"]) if m in GATEWAYS]


def gateway(name: str, *, for_new_payment: bool = True) -> Gateway:
    """The gateway for ``name``. New payments may use only enabled methods; refunds and voids
    of existing payments reach any known gateway."""
    gw = GATEWAYS.get(name)
    if gw is None or (for_new_payment and name not in enabled()):
        raise ValidationFailed(
            f"Unknown payment method '{name}'. Choose one of: {', '.join(enabled())}.",
            code="invalid_payment_method",
        )
    return gw
