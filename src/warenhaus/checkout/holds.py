"""What checkout asks about held cart lines, answered by whoever holds units (flash deals).

A cart line may name a hold (``CartLine.deal_hold_id``): units reserved for the shopper at a
deal price until a deadline. Checkout sits below the app that makes holds, so it asks through
this port; that app registers its answers in its ``AppConfig.ready()``. Without one, no line
names a live hold and there is nothing to release.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypedDict


class HeldLine(TypedDict):
    """A hold as the cart shows it."""

    live: bool  # active and before its deadline: deal price and units guaranteed
    price: object  # Decimal: the unit price while live
    quantity: int
    expires_at: object  # datetime
    replaced_quantity: int  # regular units of the same item the held line took the place of


class Holds(Protocol):
    def read(self, hold_ids: list[int]) -> dict[int, HeldLine]:
        """The holds with these ids that exist (one query)."""

    def release(self, hold_id: int) -> bool:
        """The shopper lets the held units go (the line was removed); False if not active."""

    def move(self, hold_id: int, *, cart_id: str, replaced: int) -> None:
        """The held line moved to cart ``cart_id`` (login), taking the place of ``replaced``
        more regular units."""

    def add_replaced(self, hold_id: int, quantity: int) -> None:
        """``quantity`` regular units gave way to the held line (merged carts)."""


class _NoHolds:
    def read(self, hold_ids):
        return {}

    def release(self, hold_id):
        return False

    def move(self, hold_id, *, cart_id, replaced):
        return None

    def add_replaced(self, hold_id, quantity):
        return None


_holds: Holds = _NoHolds()


def register(holds: Holds) -> None:
    """The app that makes holds answers checkout's questions from now on."""
    global _holds
    _holds = holds


def read(hold_ids: Iterable[int]) -> dict[int, HeldLine]:
    ids = list(hold_ids)
    return _holds.read(ids) if ids else {}


def release(hold_id: int) -> bool:
    return _holds.release(hold_id)


def move(hold_id: int, *, cart_id: str, replaced: int) -> None:
    _holds.move(hold_id, cart_id=cart_id, replaced=replaced)


def add_replaced(hold_id: int, quantity: int) -> None:
    _holds.add_replaced(hold_id, quantity)
