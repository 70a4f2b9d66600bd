"""Fixed-window counters, atomic and shared by every app process.

Used for login guessing and voucher-code guessing. Each hit is one
``INSERT ... ON CONFLICT DO UPDATE SET count = count + 1 RETURNING count`` on a small table, so
concurrent requests (several gunicorn processes, several machines) can never count past a
limit together: counting happens before the expensive check it guards, and the answer of the
counter is what decides. A limit is keyed by what is being protected (an e-mail with an
address, a cart, an address) and lasts for the current window only.

A limit that must count failures only (a crowd behind one address logs in and applies a good
code all day) still counts every attempt first and gives the count back when the attempt turns
out to be no failure (:meth:`Attempt.give_back`): racing guesses cannot slip past, and successes
never add up.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import F

from .errors import RateLimited
from .models import RateCounter

PRUNE_PROBABILITY = 0.01


def _bucket(name: str, key: str, window: int) -> tuple[str, int, int]:
    now = int(time.time())
    start = now - now % window
    digest = hashlib.sha256(f"{name}\x1f{key}".encode()).hexdigest()[:40]
    return f"{name[:40]}:{digest}:{start}", start, start + window - now


def _upsert(buckets: list[tuple[str, int]]) -> dict[str, int]:
    """Count one hit on each ``(bucket, window_start)`` in one statement; the new counts by
    bucket. Rows are locked in bucket order, so that two statements sharing rows (one client
    address, many carts) cannot deadlock. One statement is atomic on its own: no transaction or
    savepoint around it (outside a transaction it commits at once)."""
    buckets = sorted(dict(buckets).items())
    qn = connection.ops.quote_name
    table, bucket, count = qn(RateCounter._meta.db_table), qn("bucket"), qn("count")
    values = ", ".join(["(%s, %s, 1)"] * len(buckets))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({bucket}, {qn('window_start')}, {count}) VALUES {values} "  # noqa: S608  (names quoted by the backend; values bound)
            f"ON CONFLICT ({bucket}) DO UPDATE SET {count} = {table}.{count} + 1 RETURNING {bucket}, {count}",
            [x for pair in buckets for x in pair],
        )
        counts = {b: int(c) for b, c in cursor.fetchall()}
    if random.random() < PRUNE_PROBABILITY:  # noqa: S311  (samples when to prune, no secret)
        RateCounter.objects.filter(window_start__lt=int(time.time()) - 86400).delete()
    return counts


def hit(name: str, key: str, window: int) -> int:
    """Count one hit and return the count in the current window (this hit included)."""
    bucket, start, _ = _bucket(name, key, window)
    return _upsert([(bucket, start)])[bucket]


def hits(name: str, key: str, window: int) -> int:
    bucket, _, _ = _bucket(name, key, window)
    return int(
        RateCounter.objects.filter(bucket=bucket).values_list("count", flat=True).first() or 0
    )


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
    return hit_all_or_refuse([(name, key, limit)], window=window, message=message)[name]


@dataclass
class Attempt:
    """One attempt counted against several limits: the counts by name, the refusal if one was
    passed, and the counter rows, so that exactly these counts can be given back."""

    counts: dict[str, int]
    refusal: RateLimited | None
    rows: dict[str, str] = field(default_factory=dict)

    def give_back(self, *names: str) -> None:
        """Take this attempt off the named counters (every counter when none is named): it was
        no failure. The rows are the ones it was counted in, so a new window is not touched."""
        rows = [row for name, row in self.rows.items() if not names or name in names]
        if rows:
            RateCounter.objects.filter(bucket__in=rows, count__gt=0).update(count=F("count") - 1)


def attempt(limits: list[tuple[str, str, int]], *, window: int, message: str) -> Attempt:
    """Count one attempt against each ``(name, key, limit)`` in one statement; the counts and,
    if a count is over its limit, the refusal (not raised: a caller that counts inside its own
    transaction commits the counts before it refuses).

    Counts the same as calling :func:`hit_or_refuse` for each in turn, which stops at the first
    limit passed: the counts after that one are given back, one row at a time, on the (rare)
    refusal; until then a racing attempt sees them one higher, so a race can only err towards
    refusing."""
    buckets = [_bucket(name, key, window)[:2] for name, key, _ in limits]
    counts = _upsert(buckets)
    out = Attempt(counts={}, refusal=None)
    for i, (name, _key, limit) in enumerate(limits):
        out.counts[name] = counts[buckets[i][0]]
        out.rows[name] = buckets[i][0]
        if out.counts[name] > limit:
            for later, _start in sorted(set(buckets[i + 1 :])):
                RateCounter.objects.filter(bucket=later, count__gt=0).update(count=F("count") - 1)
            out.refusal = RateLimited(message, retry_after=retry_after(window))
            return out
    return out


def hit_all(
    limits: list[tuple[str, str, int]], *, window: int, message: str
) -> tuple[dict[str, int], RateLimited | None]:
    """:func:`attempt`, as the counts by name and the refusal."""
    counted = attempt(limits, window=window, message=message)
    return counted.counts, counted.refusal


def hit_all_or_refuse(
    limits: list[tuple[str, str, int]], *, window: int, message: str
) -> dict[str, int]:
    """:func:`hit_all`, raising the refusal."""
    counts, refusal = hit_all(limits, window=window, message=message)
    if refusal is not None:
        raise refusal
    return counts


def reset(name: str, key: str, window: int) -> None:
    bucket, _, _ = _bucket(name, key, window)
    RateCounter.objects.filter(bucket=bucket).delete()
