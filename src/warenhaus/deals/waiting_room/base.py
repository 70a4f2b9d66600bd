"""The waiting room's state behind one interface: the queue of tickets of each deal.

Two back ends pass the same contract tests (tests/deals/test_waiting_room.py): the embedded one
in the database (:mod:`.db`, no Redis needed) and :mod:`.redis` for many app servers. The
waiting room knows tickets and their order only; units, holds and sales are the database's
(:mod:`warenhaus.deals.services`), which is what keeps ``sold + held <= units`` exact whichever
back end queues the people.

A ticket's place in line is its ``order_key``: people who join before the deal starts get a
random key below ``2**52`` (a fair shuffle: nobody gains by joining the pre-queue early), people
who join after the start get ``2**52 + microseconds since the epoch`` (first come, first served).
Both fit a double exactly, so Redis sorted-set scores hold them without loss.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from django.db import models

PRE_QUEUE_SPAN = 2**52


class TicketState(models.TextChoices):
    """A ticket's state: waiting in line, let in (units held), nothing left for them, its hold
    ran out, or the shopper let the held units go."""

    WAITING = "waiting", "waiting"
    ADMITTED = "admitted", "admitted"
    SOLD_OUT = "sold_out", "sold out"
    EXPIRED = "expired", "expired"
    LEFT = "left", "left"


#: every ticket state, in the order the dashboard shows them
STATES = tuple(TicketState.values)


def order_key(*, before_start: bool, now: float) -> int:
    if before_start:
        return secrets.randbelow(PRE_QUEUE_SPAN)
    return PRE_QUEUE_SPAN + int(now * 1_000_000)


def new_ticket_id() -> str:
    return secrets.token_urlsafe(18)


@dataclass
class TicketInfo:
    id: str
    deal_id: int
    who: str
    quantity: int
    state: str
    order_key: int
    joined_at: float
    data: dict = field(default_factory=dict)
    #: the ticket's place in line at the moment it was read, where the back end learned it in the
    #: same atomic step (Redis: one script reads both); None: not known (or not waiting). Only as
    #: fresh as the read: ask :meth:`WaitingRoom.position_estimate` about a ticket held longer
    position_hint: int | None = field(default=None, compare=False)


class WaitingRoom(ABC):
    """One instance serves every deal; every method names the deal."""

    name = "abstract"

    @abstractmethod
    def join(
        self,
        deal_id: int,
        who: str,
        quantity: int,
        *,
        before_start: bool,
        now: float,
        data: dict | None = None,
    ) -> tuple[TicketInfo, bool]:
        """The ticket of ``who`` for this deal: a new one in ``waiting`` (``created`` True) with
        ``data`` (written in the same atomic step, so an admitter never sees it without), or the
        one they already have, whatever its state (joining twice never gives a second place).
        Atomic: two simultaneous joins of the same person give one ticket."""

    @abstractmethod
    def get(self, deal_id: int, ticket_id: str) -> TicketInfo | None:
        """The ticket, or None (unknown id, or a ticket of another deal)."""

    @abstractmethod
    def ticket_of(self, deal_id: int, who: str) -> TicketInfo | None:
        """The ticket ``who`` has for this deal, whatever its state, or None."""

    @abstractmethod
    def position(self, deal_id: int, ticket: TicketInfo) -> int | None:
        """1 for the next to be let in, among the waiting; None if the ticket is not waiting."""

    @abstractmethod
    def first_waiting(self, deal_id: int, n: int) -> list[TicketInfo]:
        """The ``n`` waiting tickets next in line, in order."""

    @abstractmethod
    def update(
        self,
        deal_id: int,
        ticket_id: str,
        *,
        state: str,
        data: dict | None = None,
        only_from: str | None = None,
    ) -> bool:
        """Set a ticket's state (and merge ``data`` into its data). With ``only_from``, only if
        the ticket is in that state now (atomically). False if nothing was changed."""

    def update_many(
        self,
        deal_id: int,
        changes: list[tuple[str, dict | None]],
        *,
        state: str,
        only_from: str | None = None,
    ) -> int:
        """:meth:`update` for many tickets (``(ticket_id, data)`` pairs) in as few round trips as
        the back end allows; how many were changed."""
        return sum(
            self.update(deal_id, tid, state=state, data=data, only_from=only_from)
            for tid, data in changes
        )

    def position_estimate(self, deal_id: int, ticket: TicketInfo) -> int | None:
        """:meth:`position`, or an estimate of it at most a second or so old where the exact
        answer is costly (what a polling shopper is shown; the admitter uses the exact order)."""
        return self.position(deal_id, ticket)

    def forget_snapshots(self) -> None:
        """Drop what this process remembers of every line (tests: deal ids repeat)."""
        return None

    @abstractmethod
    def beat(self, deal_id: int, at: float) -> None:
        """The worker's admitter says it is looking after the deal (at epoch seconds ``at``)."""

    @abstractmethod
    def last_beat(self, deal_id: int) -> float | None:
        """When the worker's admitter last looked after the deal, or None."""

    @abstractmethod
    def counts(self, deal_id: int) -> dict[str, int]:
        """How many tickets are in each state (every state of STATES is a key)."""

    @abstractmethod
    def acquire(self, deal_id: int, owner: str, seconds: float) -> bool:
        """Try to become the deal's admitter for ``seconds`` (a lease; not re-entrant)."""

    @abstractmethod
    def release(self, deal_id: int, owner: str) -> None:
        """Give the admitter's lease back (only if ``owner`` still holds it)."""

    @abstractmethod
    def clear(self, deal_id: int) -> None:
        """Forget the deal's room entirely."""
