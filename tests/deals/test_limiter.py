"""The admission limiter (warenhaus.deals.limiter): a full path class answers 429 with
Retry-After at once (a problem with code ``overloaded`` for the API, the waiting-room page for
browsers); below the limit requests pass; other paths are never limited. And through the real
server: a burst far beyond capacity gets 2xx or 429, never a 5xx."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest
from django.test import override_settings

from warenhaus.deals import limiter

LIMITED = [
    ("post", "/api/v1/deals/1/queue", "deal_queue"),
    ("get", "/api/v1/deals/1/queue/abc", "deal_queue"),
    ("post", "/api/v1/carts/xyz/checkout", "checkout"),
    ("post", "/checkout/", "checkout"),
    ("post", "/en/checkout/", "checkout"),
    ("get", "/deals/", "deal_page"),
    ("get", "/deals/7/", "deal_page"),
    ("get", "/en/deals/7", "deal_page"),
]
NEVER = [
    ("get", "/api/v1/deals/1"), ("get", "/api/v1/deals"), ("post", "/api/v1/deals"), ("get", "/api/v1/health"),
    ("get", "/api/v1/carts/xyz"), ("post", "/api/v1/carts/xyz/lines"), ("get", "/checkout/"), ("get", "/en/checkout/"),
    ("get", "/"), ("get", "/api/v1/deals/1/waitlist/x"), ("get", "/dealsxyz"),
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


@override_settings(ADMISSION_MAX_IN_FLIGHT=1, ADMISSION_WAIT_MS=0, ADMISSION_RETRY_AFTER=3, ADMISSION_RETRY_JITTER=0)
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


@override_settings(ADMISSION_MAX_IN_FLIGHT=1, ADMISSION_WAIT_MS=0, ADMISSION_RETRY_AFTER=2, ADMISSION_RETRY_JITTER=0)
@pytest.mark.parametrize("method,path", [(m, p) for m, p, _ in LIMITED if not p.startswith("/api/")])
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
    with full("deal_queue", limit=1):  # one of two places taken
        pass
    g = limiter.gate("deal_queue")
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
    with full("deal_queue"), full("checkout"), full("deal_page"):
        r = _send(client, method, path)
    assert r.status_code != 429


@override_settings(ADMISSION_MAX_IN_FLIGHT=1, ADMISSION_WAIT_MS=500)
@pytest.mark.django_db
def test_a_request_waits_briefly_for_a_place_that_frees(api):
    g = limiter.gate("deal_queue")
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
    assert mw[mw.index("warenhaus.core.middleware.ApiGuardMiddleware") + 1] == "warenhaus.deals.limiter.AdmissionLimiterMiddleware"
