"""Use-cases of flash deals, one module per idea; the names are re-exported here.

- :mod:`.setup`: making a deal, reading it, cancelling it, its unsold rest back to stock
- :mod:`.household`: whose turn it is, and the household keys the per-customer limit counts on
- :mod:`.queue`: joining the waiting room and polling a ticket
- :mod:`.admission`: the admitter, units coming back (a hold ending), the worker's sweep
- :mod:`.holds`: holds and their cart lines
- :mod:`.waitlist`: the wait list and its offers
- :mod:`.sales`: what checkout asks about held lines, orders placed and cancelled

A deal's contingent is taken from stock when it is made and accounted on the deal:
``sold + held + released_units <= units``, changed only by conditional UPDATEs and held by a
check constraint. A hold is taken in the same transaction as its units, in the shopper's cart
at the deal price; checkout converts it; an expired or released hold gives its units back, and
the next person in line (queue first, then the wait list) gets them.
"""

from ..cache import cache
from .admission import (
    ADMIT_BATCH,
    ADMITTER_ALIVE_SECONDS,
    ADMITTER_LEASE_SECONDS,
    CLOSE_BATCH,
    POLL_ADMIT_PAUSE,
    ROOM_KEPT,
    admit_due,
    admitter_alive,
    release_hold,
    sweep,
)
from .holds import hold_is_live, holds_by_id
from .household import address_key, household_keys, turn_owner
from .queue import POLL_AFTER_MAX, join_queue, ticket_status
from .sales import convert_holds, on_orders_cancelled
from .setup import (
    DEAL_BOUNDS,
    STATES,
    cached_deal,
    cancel_deal,
    create_deal,
    deal_json,
    get_deal,
    lowest_price_before,
    state_of,
)
from .waitlist import join_waitlist, offer_to_waitlist, waitlist_status

#: the turn owner under its earlier name (the web pages and the API call it so)
customer_key = turn_owner


def forget_everything() -> None:
    """Drop every per-process cache of deals (tests: deal ids repeat between databases)."""
    cache.clear()


__all__ = [
    "ADMITTER_ALIVE_SECONDS",
    "ADMITTER_LEASE_SECONDS",
    "ADMIT_BATCH",
    "CLOSE_BATCH",
    "DEAL_BOUNDS",
    "POLL_ADMIT_PAUSE",
    "POLL_AFTER_MAX",
    "ROOM_KEPT",
    "STATES",
    "address_key",
    "admit_due",
    "admitter_alive",
    "cached_deal",
    "cancel_deal",
    "convert_holds",
    "create_deal",
    "customer_key",
    "deal_json",
    "forget_everything",
    "get_deal",
    "hold_is_live",
    "holds_by_id",
    "household_keys",
    "join_queue",
    "join_waitlist",
    "lowest_price_before",
    "offer_to_waitlist",
    "on_orders_cancelled",
    "release_hold",
    "state_of",
    "sweep",
    "ticket_status",
    "turn_owner",
    "waitlist_status",
]
