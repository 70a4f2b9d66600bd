"""The waiting room back end in use: ``WAITING_ROOM_BACKEND`` = ``db`` (the default, embedded)
or ``redis`` (``WAITING_ROOM_REDIS_URL`` names the server, else ``REDIS_URL``)."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from .base import STATES, TicketInfo, TicketState, WaitingRoom, order_key  # noqa: F401


@lru_cache(maxsize=8)
def _make(name: str, url: str, prefix: str) -> WaitingRoom:
    if name == "redis":
        from .redis import RedisWaitingRoom

        return RedisWaitingRoom(url, prefix=prefix)
    from .db import DatabaseWaitingRoom

    return DatabaseWaitingRoom()


def waiting_room() -> WaitingRoom:
    url = (
        getattr(settings, "WAITING_ROOM_REDIS_URL", "") or getattr(settings, "REDIS_URL", "") or ""
    )
    return _make(
        getattr(settings, "WAITING_ROOM_BACKEND", "db"),
        url,
        getattr(settings, "WAITING_ROOM_PREFIX", "wr"),
    )
