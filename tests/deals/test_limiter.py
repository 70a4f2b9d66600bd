"""The admission limiter (warenhaus.deals.limiter): a full path class answers 429 with
Retry-After at once (a problem with code ``overloaded`` for the API, the waiting-room page for
browsers); below the limit requests pass; other paths are never limited. And through the real
server: a burst far beyond capacity gets 2xx or 429, never a 5xx."""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import contextmanager

import pytest
from django.test import override_settings

from warenhaus.deals import limiter

LIMITED = [
    ("post", "/api/v1/deals/1/queue", "deal_join"),
    ("get", "/api/v1/deals/1/queue/abc", "deal_poll"),
    ("post", "/api/v1/carts/xyz/checkout", "checkout"),
    ("post", "/checkout/", "checkout"),
    ("post", "/en/checkout/", "checkout"),
    ("get", "/deals/", "deal_page"),
    ("get", "/deals/7/", "deal_page"),
    ("get", "/en/deals/7", "deal_page"),
]
NEVER = [
    ("get", "/api/v1/deals/1"),
    ("get", "/api/v1/deals"),
    ("post", "/api/v1/deals"),
    ("get", "/api/v1/health"),
    ("get", "/api/v1/carts/xyz"),
    ("post", "/api/v1/carts/xyz/lines"),
    ("get", "/checkout/"),
    ("get", "/en/checkout/"),
    ("get", "/"),
    ("get", "/api/v1/deals/1/waitlist/x"),
    ("get", "/dealsxyz"),
]


@pytest.mark.parametrize("method,path,name", LIMITED)
def test_the_expensive_paths_have_a_class(method, path, name):
    assert limiter.path_class(method.upper(), path) == name


@pytest.mark.parametrize("method,path", NEVER)
def test_other_paths_have_none(method, path):
    assert limiter.path_class(method.upper(), path) is None


@contextmanager
def full(name: str, limit: int = 1):
    """Occupy every place of a class, as ``limit`` requests in flight would."""
    g = limiter.gate(name)
    for _ in range(limit):
        assert g.enter(limit, 0)
    try:
        yield g
    finally:
        for _ in range(limit):
            g.leave()


def _send(client, method, path):
    if method == "post":
        return client.post(path, data="{}", content_type="application/json")
    return client.get(path)


@override_settings(
    ADMISSION_MAX_IN_FLIGHT=1,
    ADMISSION_WAIT_MS=0,
    ADMISSION_RETRY_AFTER=3,
    ADMISSION_RETRY_JITTER=0,
)
@pytest.mark.parametrize("method,path", [(m, p) for m, p, _ in LIMITED if p.startswith("/api/")])
def test_a_full_api_class_answers_429_overloaded_with_retry_after(client, method, path):
    with full(limiter.path_class(method.upper(), path)):
        r = _send(client, method, path)
    assert r.status_code == 429
    assert r["Retry-After"] == "3"
    assert r["Content-Type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "overloaded" and body["status"] == 429 and body["retry_after"] == 3
    assert body["type"].endswith("/overloaded") and body["title"] and body["detail"]


@override_settings(
    ADMISSION_MAX_IN_FLIGHT=1,
    ADMISSION_WAIT_MS=0,
    ADMISSION_RETRY_AFTER=2,
    ADMISSION_RETRY_JITTER=0,
)
@pytest.mark.parametrize(
    "method,path", [(m, p) for m, p, _ in LIMITED if not p.startswith("/api/")]
)
def test_a_full_page_class_shows_the_waiting_room(client, method, path):
    # no django_db mark: any database access would fail the test (the page needs none)
    with full(limiter.path_class(method.upper(), path)):
        r = _send(client, method, path)
    assert r.status_code == 429
    assert r["Retry-After"] == "2"
    assert r["Content-Type"].startswith("text/html")
    html = r.content.decode()
    assert '<meta http-equiv="refresh" content="2">' in html
    if path.startswith("/en/"):
        assert "Just a moment, please" in html and 'lang="en"' in html
    else:
        assert "Einen Moment, bitte" in html and 'lang="de"' in html
        assert "in 2 Sekunden" in html
    if method == "post":
        assert ("not been placed yet" in html) or ("noch nicht aufgegeben" in html)


@override_settings(ADMISSION_MAX_IN_FLIGHT=1, ADMISSION_WAIT_MS=0)
def test_the_browser_language_picks_the_page(client):
    with full("deal_page"):
        r = client.get("/deals/", headers={"Accept-Language": "en"})
    assert r.status_code == 429 and "Just a moment, please" in r.content.decode()


@override_settings(ADMISSION_MAX_IN_FLIGHT=2, ADMISSION_WAIT_MS=0)
@pytest.mark.django_db
def test_below_the_limit_requests_pass(api):
    with full("deal_join", limit=1):  # one of two places taken
        pass
    g = limiter.gate("deal_join")
    assert g.enter(2, 0)  # one in flight, one place left
    try:
        r = api.post("/deals/999999/queue", {"email": "erika@example.de"})
    finally:
        g.leave()
    assert r.status_code == 404 and r.json()["code"] == "deal_not_found"  # the view answered
    assert g.in_flight == 0


@override_settings(ADMISSION_MAX_IN_FLIGHT=1, ADMISSION_WAIT_MS=0)
@pytest.mark.django_db
@pytest.mark.parametrize("method,path", NEVER)
def test_other_paths_are_never_limited(client, method, path):
    with full("deal_join"), full("deal_poll"), full("checkout"), full("deal_page"):
        r = _send(client, method, path)
    assert r.status_code != 429


@override_settings(ADMISSION_MAX_IN_FLIGHT=1, ADMISSION_WAIT_MS=500)
@pytest.mark.django_db
def test_a_request_waits_briefly_for_a_place_that_frees(api):
    g = limiter.gate("deal_join")
    assert g.enter(1, 0)
    threading.Timer(0.05, g.leave).start()
    started = time.monotonic()
    r = api.post("/deals/999999/queue", {"email": "erika@example.de"})
    assert r.status_code == 404, r.content
    assert time.monotonic() - started < 0.5


@override_settings(ADMISSION_MAX_IN_FLIGHT=0)
@pytest.mark.django_db
def test_zero_turns_the_limiter_off(client):
    with full("deal_page"):
        r = client.get("/deals/")
    assert r.status_code != 429


def test_retry_after_is_jittered_within_bounds():
    with override_settings(ADMISSION_RETRY_AFTER=2, ADMISSION_RETRY_JITTER=2):
        seen = {limiter.retry_after() for _ in range(200)}
    assert seen <= {2, 3, 4} and len(seen) > 1


def test_the_limiter_sits_right_after_the_api_guard():
    from django.conf import settings

    mw = settings.MIDDLEWARE
    assert (
        mw[mw.index("warenhaus.core.middleware.ApiGuardMiddleware") + 1]
        == "warenhaus.deals.limiter.AdmissionLimiterMiddleware"
    )


@override_settings(ADMISSION_MAX_IN_FLIGHT=5, ADMISSION_MAX_QUEUE_MS=2000, ADMISSION_RETRY_JITTER=0)
@pytest.mark.django_db
def test_a_request_that_waited_too_long_in_the_queue_is_refused_at_once(api, client):
    old = f"t={int((time.time() - 5) * 1_000_000)}"
    fresh = f"t={time.time() - 0.1:.3f}"
    r = api.post(
        "/deals/999999/queue", {"email": "erika@example.de"}, headers={"X-Request-Start": old}
    )
    assert r.status_code == 429 and r.json()["code"] == "overloaded" and r["Retry-After"]
    r = api.post(
        "/deals/999999/queue", {"email": "erika@example.de"}, headers={"X-Request-Start": fresh}
    )
    assert r.status_code == 404  # served
    assert client.get("/deals/", headers={"X-Request-Start": old}).status_code == 429
    assert (
        api.get("/deals/999999", headers={"X-Request-Start": old}).status_code == 404
    )  # not a limited path
    # a checkout submit may wait longer than a join before it is shed (what is under way goes first)
    two_s = f"t={time.time() - 2.5:.3f}"
    assert (
        api.post(
            "/deals/999999/queue", {"email": "e@example.de"}, headers={"X-Request-Start": two_s}
        ).status_code
        == 429
    )
    assert (
        api.post("/carts/nope/checkout", {}, headers={"X-Request-Start": two_s}).status_code != 429
    )
    with override_settings(ADMISSION_MAX_QUEUE_MS=0):
        assert (
            api.post(
                "/deals/999999/queue", {"email": "e@example.de"}, headers={"X-Request-Start": old}
            ).status_code
            == 404
        )


@override_settings(ADMISSION_MAX_IN_FLIGHT=5, ADMISSION_MAX_QUEUE_MS=2000)
@pytest.mark.django_db
def test_the_servers_own_stamp_counts_only_the_wait_for_a_thread(api, monkeypatch):
    """A worker's first request is slow by itself (imports, connections): that is not waiting in
    the queue, and must not get it refused (the server's stamp says how long it was queued)."""
    monkeypatch.setattr(limiter, "_server_stamps", "m4rk")
    came = int((time.time() - 5) * 1_000_000)
    started_at_once = {"X-Request-Start": f"t={came} q=1000 wh=m4rk"}
    assert (
        api.post(
            "/deals/999999/queue", {"email": "e@example.de"}, headers=started_at_once
        ).status_code
        == 404
    )  # served
    waited = {"X-Request-Start": f"t={came} q=4000000 wh=m4rk"}
    assert (
        api.post("/deals/999999/queue", {"email": "e@example.de"}, headers=waited).status_code
        == 429
    )
    forged = {"X-Request-Start": f"t={came} q=1000 wh=guess"}  # not the server's: counts from t
    assert (
        api.post("/deals/999999/queue", {"email": "e@example.de"}, headers=forged).status_code
        == 429
    )


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("t=1700000000.5", 1700000000.5),
        ("t=1700000000500", 1700000000.5),
        ("t=1700000000500000", 1700000000.5),
        ("1700000000.5", 1700000000.5),
        ("t=abc", None),
        ("", None),
    ],
)
def test_x_request_start_in_seconds_milliseconds_or_microseconds(rf, raw, expected, monkeypatch):
    monkeypatch.setattr(limiter.time, "time", lambda: 1700000001.5)
    request = rf.get("/deals/", HTTP_X_REQUEST_START=raw) if raw else rf.get("/deals/")
    got = limiter.queued_seconds(request)
    assert (got is None) if expected is None else got == pytest.approx(1700000001.5 - expected)


def test_gunicorn_threads_stamp_when_a_request_was_queued(monkeypatch):
    """``post_worker_init`` wraps a gthread worker: the time a request is queued for a thread
    reaches the app as X-Request-Start, whatever the client sent."""
    seen = {}

    class Worker:
        def enqueue_req(self, conn):
            seen["queued"] = True

        def handle_request(self, req, conn):
            seen["headers"] = list(req.headers)

    class Conn:
        pass

    class Req:
        headers = [("HOST", "x"), ("X-REQUEST-START", "t=1")]

    monkeypatch.setattr(limiter, "_server_stamps", None)  # set back afterwards
    w, conn, req = Worker(), Conn(), Req()
    before = time.time()
    limiter.stamp_queue_time(w)
    w.enqueue_req(conn)
    w.handle_request(req, conn)
    stamps = [v for k, v in seen["headers"] if k == "X-REQUEST-START"]
    assert seen["queued"] and len(stamps) == 1
    at, queued, mark = stamps[0].split(" ")
    assert (
        before <= int(at[2:]) / 1e6 <= time.time()
        and 0 <= int(queued[2:]) / 1e6 <= time.time() - before
    )
    # marked as the server's own (a secret per process), so it may date a join's arrival
    assert mark == f"wh={limiter._server_stamps}" and len(limiter._server_stamps) == 16


# -- through the production server ---------------------------------------------------------------

try:
    from tests.concurrency.conftest import live_gunicorn, seed_variant  # noqa: F401 - fixtures
    from tests.conftest import requires_postgres
except ImportError:  # tests/ is not a package; pytest puts it on sys.path as the rootdir conftest
    from concurrency.conftest import live_gunicorn, seed_variant  # noqa: F401
    from conftest import requires_postgres

BURST = 300


@pytest.fixture
def tight_server(monkeypatch, request):
    """gunicorn (3 processes x 4 threads) with one deal-queue request in flight per process and
    a 20 ms wait: far less than the burst."""
    monkeypatch.setenv("ADMISSION_MAX_IN_FLIGHT", "1")
    monkeypatch.setenv("ADMISSION_WAIT_MS", "20")
    return request.getfixturevalue("live_gunicorn")


@pytest.mark.postgres
@requires_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("pg-concurrency")
def test_a_burst_far_beyond_capacity_gets_only_2xx_and_429(tight_server, seed_variant):
    import asyncio
    from datetime import timedelta

    import httpx
    from django.utils import timezone

    from warenhaus.deals import services

    variant = seed_variant(on_hand=50, price="119.99")
    start = timezone.now()
    deal = services.create_deal(
        actor=None,
        sku=variant.sku,
        deal_price="49.97",
        units=50,
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        admissions_per_minute=6000,
    )
    base = f"{tight_server.base_url}/api/v1/deals/{deal.pk}/queue"

    async def burst():
        limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=60) as http:
            gate = asyncio.Event()

            async def one(i):
                await gate.wait()
                return await http.post(base, json={"email": f"b{i}@burst.example"})

            tasks = [asyncio.ensure_future(one(i)) for i in range(BURST)]
            await asyncio.sleep(0.2)
            gate.set()
            return await asyncio.gather(*tasks, return_exceptions=True)

    answers = asyncio.run(burst())
    failed = [a for a in answers if isinstance(a, BaseException)]
    assert not failed, failed[:3]
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) <= {201, 429}, f"{statuses}\n{tight_server.log()}"
    assert statuses[201] >= 1 and statuses[429] >= 1, statuses
    for a in answers:
        if a.status_code == 429:
            assert a.headers["Retry-After"].isdigit() and a.headers["content-type"].startswith(
                "application/problem+json"
            )
            assert a.json()["code"] == "overloaded"
    # and nothing half-done: every 201 is one ticket, a refused join left none
    from warenhaus.deals.waiting_room import waiting_room

    counts = waiting_room().counts(deal.pk)
    assert sum(counts.values()) == statuses[201]
