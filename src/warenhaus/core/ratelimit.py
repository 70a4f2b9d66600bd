"""Fixed-window counters in the shared cache (database cache by default, Redis when configured).

Used for login guessing and, later, voucher-code guessing. A limit is keyed by what is being
protected (an email, an address) so that one client cannot lock out another's account from
everywhere at once: a lock-out is per (key, window).
"""

from __future__ import annotations

import time

from django.core.cache import cache

from .errors import RateLimited


def _bucket(name: str, key: str, window: int) -> tuple[str, int]:
    now = int(time.time())
    start = now - now % window
    return f"rl:{name}:{key}:{start}", start + window - now


def hits(name: str, key: str, window: int) -> int:
    bucket, _ = _bucket(name, key, window)
    return int(cache.get(bucket, 0))


def hit(name: str, key: str, window: int) -> int:
    bucket, _ = _bucket(name, key, window)
    if cache.add(bucket, 1, timeout=window + 5):
        return 1
    try:
        return cache.incr(bucket)
    except ValueError:
        cache.set(bucket, 1, timeout=window + 5)
        return 1


def check(name: str, key: str, *, limit: int, window: int, message: str) -> None:
    """Raise ``RateLimited`` if ``key`` has used up ``limit`` hits in the current window."""
    bucket, remaining = _bucket(name, key, window)
    if int(cache.get(bucket, 0)) >= limit:
        raise RateLimited(message, retry_after=remaining)


def reset(name: str, key: str, window: int) -> None:
    bucket, _ = _bucket(name, key, window)
    cache.delete(bucket)
