"""Places in a long line, cheaply: a per-process snapshot of the line's order, at most
``DEALS_CACHE_SECONDS`` old, and a count of only those who joined after it.

An exact place is a ``COUNT`` of everyone ahead: O(place) per question, which is what thousands
of shoppers polling a line of thousands cannot afford. With a snapshot, someone in it is
answered from memory (``bisect``), and someone who joined after it costs a count over the
index range of the last second's joiners. Those who left the line since the snapshot are still
counted for at most that long; a process that changes the line itself drops its snapshot
(:meth:`RankSnapshot.forget`), so within one process the answer is exact.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable

from django.conf import settings


class RankSnapshot:
    def __init__(self):
        #: key (a deal id) -> (monotonic time taken, the line's sort keys in order)
        self._lines: dict[object, tuple[float, list]] = {}
        self._newest: dict[object, object] = {}

    def place(
        self, key, me, *, load: Callable[[], list], count_between: Callable[[object, object], int]
    ) -> int:
        """1-based place of sort key ``me``: ``load()`` gives every sort key of the line in
        order; ``count_between(after, me)`` counts the line's members with sort keys above
        ``after`` (None: from the start) and below ``me``."""
        line = self.line(key, load=load)
        ahead = bisect.bisect_left(line, me)
        if not line or me > line[-1]:
            ahead += count_between(line[-1] if line else None, me)
        return ahead + 1

    def line(self, key, *, load: Callable[[], list]) -> list:
        """The line's sort keys in order, at most ``DEALS_CACHE_SECONDS`` old (``load()`` when
        older)."""
        ttl = float(getattr(settings, "DEALS_CACHE_SECONDS", 1.0))
        taken, line = self._lines.get(key, (-1e9, []))
        if time.monotonic() - taken > ttl:
            line = load()
            self._lines[key] = (time.monotonic(), line)
            self._newest[key] = max((k[-1] for k in line), default=None)
        return line

    def newest(self, key):
        """The largest last component of the snapshot's sort keys (an id that only grows: every
        member with a larger one joined after the snapshot), None for an empty line. Call after
        :meth:`line`."""
        return self._newest.get(key)

    def forget(self, key=None) -> None:
        if key is None:
            self._lines.clear()
            self._newest.clear()
        else:
            self._lines.pop(key, None)
            self._newest.pop(key, None)
