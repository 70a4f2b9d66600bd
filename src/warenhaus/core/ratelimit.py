"""Fixed-window counters, atomic and shared by every app process.

Used for login guessing and voucher-code guessing. Each hit is one
``INSERT ... ON CONFLICT DO UPDATE SET count = count + 1 RETURNING count`` on a small table, so
concurrent requests (several gunicorn processes, several machines) can never count past a
limit together: counting happens before the expensive check it guards, and the answer of the
counter is what decides. A limit is keyed by what is being protected (an e-mail with an
address, a cart, an address) and lasts for the current window only.
"""

from __future__ import annotations

import hashlib
import random
import time

from django.db import connection, transaction

from .errors import RateLimited
from .models import RateCounter

PRUNE_PROBABILITY = 0.01


def _bucket(name: str, key: str, window: int) -> tuple[str, int, int]:
    now = int(time.time())
    start = now - now % window
    digest = hashlib.sha256(f"{name}\x1f{key}".encode()).hexdigest()[:40]
    return f"{name[:40]}:{digest}:{start}", start, start + window - now


def hit(name: str, key: str, window: int) -> int:
    """Count one hit and return the count in the current window (this hit included)."""
    bucket, start, _ = _bucket(name, key, window)
    qn = connection.ops.quote_name
    table = qn(RateCounter._meta.db_table)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({qn('bucket')}, {qn('window_start')}, {qn('count')}) VALUES (%s, %s, 1) "
                f"ON CONFLICT ({qn('bucket')}) DO UPDATE SET {qn('count')} = {table}.{qn('count')} + 1 RETURNING {qn('count')}",
                [bucket, start],
            )
            count = cursor.fetchone()[0]
    if random.random() < PRUNE_PROBABILITY:
        RateCounter.objects.filter(window_start__lt=int(time.time()) - 86400).delete()
    return int(count)


def hits(name: str, key: str, window: int) -> int:
    bucket, _, _ = _bucket(name, key, window)
    return int(RateCounter.objects.filter(bucket=bucket).values_list("count", flat=True).first() or 0)


def retry_after(window: int) -> int:
    now = int(time.time())
    return window - now % window


def check(name: str, key: str, *, limit: int, window: int, message: str) -> None:
    """Raise ``RateLimited`` if ``key`` has used up ``limit`` hits in the current window."""
    bucket, _, remaining = _bucket(name, key, window)
    if hits(name, key, window) >= limit:
        raise RateLimited(message, retry_after=remaining)


def hit_or_refuse(name: str, key: str, *, limit: int, window: int, message: str) -> int:
    """Count this attempt first, then refuse it if it is over ``limit``: the atomic way to cap
    attempts that race each other."""
    count = hit(name, key, window)
    if count > limit:
        raise RateLimited(message, retry_after=retry_after(window))
    return count


def reset(name: str, key: str, window: int) -> None:
    bucket, _, _ = _bucket(name, key, window)
    RateCounter.objects.filter(bucket=bucket).delete()
