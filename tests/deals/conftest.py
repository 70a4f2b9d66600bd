"""Fixtures for the waiting-room contract: a deal (a real row, for the database back end's
foreign key) and the ``room`` under test, once per back end. The Redis back end runs against the
real server at ``TEST_REDIS_URL`` (default redis://127.0.0.1:6379/0) under a prefix of its own
per test, removed afterwards; without a server its cases are skipped, or fail when
``REQUIRE_REDIS=1``."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def make_deal(make_product):
    """``make_deal()`` -> the id of a fresh deal (committed in transactional tests)."""
    from django.utils import timezone

    from warenhaus.deals.models import Deal

    def make() -> int:
        variant = make_product(price="119.99", on_hand=100).variants.get()
        start = timezone.now()
        return Deal.objects.create(
            variant=variant,
            deal_price=Decimal("49.97"),
            regular_price=Decimal("119.99"),
            lowest_price_30_days=Decimal("119.99"),
            units=100,
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            admissions_per_minute=600,
        ).pk

    return make


@pytest.fixture
def deal(make_deal):
    return make_deal()


def redis_or_skip() -> None:
    """Skip the calling test when the Redis server is not there (fail with REQUIRE_REDIS=1)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
        return
    except redis.RedisError as exc:
        reason = f"Redis is not reachable at {REDIS_URL} ({exc}); start redis-server or set TEST_REDIS_URL"
    finally:
        client.close()
    if os.environ.get("REQUIRE_REDIS") == "1":
        pytest.fail(f"REQUIRE_REDIS=1: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(params=["db", "redis"])
def backend(request):
    return request.param


@pytest.fixture
def room(backend):
    if backend == "db":
        from warenhaus.deals.waiting_room.db import DatabaseWaitingRoom

        yield DatabaseWaitingRoom()
        return
    redis_or_skip()
    from warenhaus.deals.waiting_room.redis import RedisWaitingRoom

    prefix = f"wrtest-{uuid.uuid4().hex[:12]}"
    r = RedisWaitingRoom(REDIS_URL, prefix=prefix)
    try:
        yield r
    finally:
        stale = list(r.client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(stale), 500):
            r.client.unlink(*stale[i : i + 500])
        r.close()
