"""Domain events: what happened in one domain, for the domains above it to react to.

Each domain declares its events in ``<app>/events.py`` and sends them inside the transaction that
made the change; receivers (``<app>/receivers.py``, connected in ``AppConfig.ready``) write in
that same transaction, and one that raises rolls the change back. Effects outside the database
(mail delivery, a gateway call) wait for the commit (``transaction.on_commit``).
"""

from __future__ import annotations

from django.dispatch import Signal


class DomainEvent(Signal):
    """A named signal. Receivers run in the order they were connected (the order of
    ``INSTALLED_APPS``), inside the sender's transaction; their exceptions propagate."""

    def __init__(self, name: str, doc: str = "") -> None:
        super().__init__()
        self.name = name
        self.__doc__ = doc

    def send(self, **payload) -> None:  # type: ignore[override]
        super().send(sender=self.name, **payload)

    def __repr__(self) -> str:
        return f"<DomainEvent {self.name}>"
