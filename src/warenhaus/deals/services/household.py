"""Whose turn it is, and the household keys a deal's per-customer limit is counted on.

A turn (a place in the waiting room or on the wait list, and the hold it gets) belongs to its
owner, ``who``: the account, else a capability the guest holds. The limit is a household's:
it counts on every key that names the buyer (``user:``/``email:``), the shipping address
(``address:``) and the payment instrument (``payment:``); each key's usage is a row of
:class:`~warenhaus.deals.models.HouseholdUsage` that the database keeps within the limit.
"""

from __future__ import annotations

import hashlib
import secrets

from django.db.models import F
from django.db.models.functions import Greatest

from warenhaus.core.errors import Conflict, ValidationFailed

from .. import sql
from ..models import Deal, HouseholdUsage


def turn_owner(*, user=None, guest: str = "", email: str = "") -> str:
    """Whose turn it is in the waiting room and on the wait list: the account, else a capability
    the guest holds (``cart:<id>``, ``session:<key>``), else (a guest who gave only an address) a
    new anonymous turn that only its ticket reaches. Never the e-mail address itself: anyone can
    type one, and a turn carries a ticket, a cart and a hold."""
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    if guest:
        return guest
    if email:
        return f"guest:{secrets.token_urlsafe(18)}"
    raise ValidationFailed(
        "Say who is queueing: log in, send the cart you hold, or give an e-mail address.",
        code="identity_required",
    )


def user_id_of(who: str) -> int | None:
    """The account a turn belongs to, or None (a guest's)."""
    return int(who.split(":", 1)[1]) if who.startswith("user:") else None


def household_keys(who: str, contact: str) -> list[str]:
    """The keys whose usage limits a turn: its own, and the e-mail address a guest gave (a
    household's limit counts the address, whoever types it)."""
    keys = [who]
    if contact and not who.startswith("user:"):
        keys.append(f"email:{contact.strip().lower()}")
    return keys


def address_key(address: dict) -> str:
    """One household, however the address is typed: case, spaces, punctuation, ß/ss and
    "Str."/"Straße" do not matter."""

    def clean(value) -> str:
        text = "".join(ch for ch in str(value or "").casefold() if ch.isalnum())
        return text.replace("strasse", "str")

    norm = "|".join(clean(address.get(k)) for k in ("street", "postal_code", "city", "country"))
    return "address:" + hashlib.sha256(norm.encode()).hexdigest()[:32]


def payment_key(fingerprint: str) -> str:
    """One household per payment instrument (the gateway's fingerprint of the card)."""
    return "payment:" + hashlib.sha256(fingerprint.encode()).hexdigest()[:32]


def buyer_keys(*, who: str, user_id, email: str, address: dict, fingerprint: str) -> list[str]:
    """The household keys a purchase counts on: the turn's owner, the buyer, the shipping
    address and (when the method has one) the payment instrument."""
    keys = [who, f"user:{user_id}" if user_id else f"email:{email.lower()}", address_key(address)]
    if fingerprint:
        keys.append(payment_key(fingerprint))
    return keys


def usage_left(deal: Deal, keys: list[str]) -> int:
    """How many units the households ``keys`` may still take."""
    keys = sorted(set(keys))
    if not keys:
        return deal.limit_per_customer
    left = sql.least_usage_left(deal.pk, keys)
    return (
        deal.limit_per_customer if left is None else max(0, min(int(left), deal.limit_per_customer))
    )


def check_usage(deal: Deal, keys: list[str], quantity: int) -> None:
    """Refuse ``limit_per_customer`` if the households ``keys`` may take fewer than ``quantity``."""
    if usage_left(deal, keys) < quantity:
        limit = deal.limit_per_customer
        raise Conflict(
            f"You already have {limit} of this deal (at most {limit} per customer).",
            code="limit_per_customer",
            limit=limit,
            reason="user",
        )


def check_quantity(deal: Deal, quantity: int) -> None:
    """Refuse ``limit_per_customer`` if one turn asks for more than the limit."""
    if quantity > deal.limit_per_customer:
        raise Conflict(
            f"At most {deal.limit_per_customer} per customer.",
            code="limit_per_customer",
            limit=deal.limit_per_customer,
            reason="quantity",
        )


def count_household(deal: Deal, keys: list[str], quantity: int, *, why: dict[str, str]) -> None:
    """Add ``quantity`` to every household key, or refuse with the reason (inside a transaction).

    One statement for all keys (an upsert that adds only where the limit allows, and names the
    keys it counted), in the keys' order so concurrent checkouts lock the rows alike. The
    database's check constraint stays the last word."""
    keys = sorted(set(keys))
    limit = deal.limit_per_customer
    check_quantity(deal, quantity)
    counted = sql.count_household(deal.pk, keys, quantity, limit)
    for k in keys:
        if k not in counted:
            kind = k.split(":", 1)[0]
            raise Conflict(
                why.get(kind, f"At most {limit} per customer."),
                code="limit_per_customer",
                limit=limit,
                reason=kind,
            )


def uncount_household(deal_id: int, keys: list[str], quantity: int) -> None:
    """The households may buy ``quantity`` units again (a sale was cancelled)."""
    if keys:
        HouseholdUsage.objects.filter(deal_id=deal_id, key__in=sorted(set(keys))).update(
            units=Greatest(F("units") - quantity, 0)
        )
