"""What this process remembers of deals between requests, behind one object.

Joins and polls are what a rush does thousands of times a second; each would otherwise read the
deal's row, ask whether the worker's admitter is alive and whether anyone waits on the wait
list. Each answer is kept for ``DEALS_CACHE_SECONDS`` (per process) and dropped as soon as this
process changes what it says. Counters may lag by that much; that only decides what a shopper
is told first: units are taken from the fresh row, and the database's checks hold the contingent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings

from .ranks import RankSnapshot
from .waiting_room import waiting_room

T = TypeVar("T")


class DealsCache:
    def __init__(self):
        #: deal id -> (monotonic time read, the Deal row)
        self.deals: dict[int, tuple[float, object]] = {}
        #: deal id -> (monotonic time read, whether the worker's admitter looks after the deal)
        self.admitter: dict[int, tuple[float, bool]] = {}
        #: deal id -> (monotonic time read, whether anyone waits on the wait list)
        self.waitlist_open: dict[int, tuple[float, bool]] = {}
        #: deal id -> when this process last found the admitter's lease taken (monotonic)
        self.lease_busy: dict[int, float] = {}
        #: the wait list's order per deal (places answered from memory)
        self.waitlist_ranks = RankSnapshot()

    @staticmethod
    def seconds() -> float:
        return float(getattr(settings, "DEALS_CACHE_SECONDS", 1.0))

    def remembered(self, table: dict, key: int, load: Callable[[], T]) -> T:
        """``table``'s value for ``key`` if at most ``DEALS_CACHE_SECONDS`` old, else ``load()``
        (remembered from now on)."""
        hit = table.get(key)
        if hit is not None and time.monotonic() - hit[0] <= self.seconds():
            return hit[1]
        value = load()
        table[key] = (time.monotonic(), value)
        return value

    @staticmethod
    def remember(table: dict, key: int, value) -> None:
        table[key] = (time.monotonic(), value)

    def forget_deal(self, deal_id) -> None:
        """This process changed the deal's row."""
        self.deals.pop(int(deal_id), None)

    def waitlist_changed(self, deal_id: int) -> None:
        """This process changed the deal's wait list."""
        self.waitlist_open.pop(deal_id, None)
        self.waitlist_ranks.forget(deal_id)

    def clear(self) -> None:
        """Forget everything, the waiting room's snapshots of lines too (tests: deal ids repeat
        between databases)."""
        self.deals.clear()
        self.admitter.clear()
        self.waitlist_open.clear()
        self.lease_busy.clear()
        self.waitlist_ranks.forget()
        waiting_room().forget_snapshots()


#: the one instance of this process
cache = DealsCache()
