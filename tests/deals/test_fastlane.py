"""The waiting room's fast lane (warenhaus.deals.fastlane): joins and polls answered in front of
Django give the answer Django gives (status, body, headers), errors included; whatever the lane
cannot answer exactly like Django goes on to Django with its body intact; the admission limiter
applies; ``DEALS_FAST_LANE`` off sends everything to Django. The production server
(``warenhaus.wsgi``) has the lane in front: tests/deals/test_incident.py drives it over HTTP."""

from __future__ import annotations

import io
import json
import sys
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from warenhaus.deals import fastlane, limiter

pytestmark = pytest.mark.django_db

JITTER = {"poll_after_seconds", "eta_seconds"}  # spread at random per answer


@pytest.fixture
def deal(make_product):
    from warenhaus.deals.services import create_deal

    sku = make_product(price="119.99", on_hand=20).variants.get().sku
    start = timezone.now() - timedelta(seconds=1)
    return create_deal(
        actor=None,
        sku=sku,
        deal_price="49.97",
        units=1,
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        limit_per_customer=1,
    ).pk


def _both(api, method, path, body=None, headers=None):
    """The same request through the lane (as production) and through Django alone."""
    lane = (
        getattr(api, method)(path, body, headers=headers)
        if method == "post"
        else api.get(path, headers=headers)
    )
    django = Client()
    h = {**({"Authorization": f"Bearer {api.token}"} if api.token else {}), **(headers or {})}
    if method == "post":
        plain = django.post(
            f"/api/v1{path}", data=json.dumps(body), content_type="application/json", headers=h
        )
    else:
        plain = django.get(f"/api/v1{path}", headers=h)
    return lane, plain


def _same(lane, plain):
    assert getattr(lane, "fast_lane", False), "the lane did not take the request"
    assert not getattr(plain, "fast_lane", False)
    assert lane.status_code == plain.status_code, (lane.content, plain.content)
    skip = {"Date", "Server"}
    assert {k: v for k, v in lane.items() if k not in skip} == {
        k: v for k, v in plain.items() if k not in skip
    }
    a, b = lane.json(), plain.json()
    assert {k: v for k, v in a.items() if k not in JITTER} == {
        k: v for k, v in b.items() if k not in JITTER
    }


def test_joins_and_polls_are_answered_as_django_answers_them(api, api_as, make_user, deal):
    one, two = (
        {"email": f"{n}@example.de", "cart_id": api.post("/carts", {}).json()["id"]}
        for n in ("erste", "zweite")
    )
    first = api.post(f"/deals/{deal}/queue", one)
    assert first.fast_lane and first.status_code == 201 and first.json()["state"] == "admitted"
    # joining again with the same cart is the same ticket: the lane's and Django's answers can be compared whole
    _same(*_both(api, "post", f"/deals/{deal}/queue", one))
    waiting = api.post(f"/deals/{deal}/queue", two).json()
    assert waiting["state"] == "waiting" and waiting["position"] == 1
    _same(*_both(api, "post", f"/deals/{deal}/queue", two))
    _same(*_both(api, "get", f"/deals/{deal}/queue/{waiting['ticket']}"))
    _same(*_both(api, "get", f"/deals/{deal}/queue/{first.json()['ticket']}"))
    # with a token, in English
    shopper = api_as(make_user(email="konto@example.de"))
    mine = shopper.post(f"/deals/{deal}/queue", {}, headers={"Accept-Language": "en"})
    assert mine.fast_lane and mine.status_code == 201
    _same(*_both(shopper, "post", f"/deals/{deal}/queue", {}, headers={"Accept-Language": "en"}))


@pytest.mark.parametrize(
    "method, path, body, status, code",
    [
        ("get", "/deals/{deal}/queue/gibt-es-nicht", None, 404, "ticket_not_found"),
        ("get", "/deals/99999999/queue/abc", None, 404, "deal_not_found"),
        ("post", "/deals/99999999/queue", {"email": "a@example.de"}, 404, "deal_not_found"),
        (
            "post",
            "/deals/{deal}/queue",
            {"email": "a@example.de", "quantity": 2},
            409,
            "limit_per_customer",
        ),
        ("post", "/deals/{deal}/queue", {}, 422, "identity_required"),
        ("post", "/deals/{deal}/queue", {"cart_id": "nope"}, 404, "cart_not_found"),
    ],
)
@pytest.mark.parametrize("language", ["de", "en"])
def test_errors_are_the_same_problems(api, deal, method, path, body, status, code, language):
    lane, plain = _both(
        api, method, path.format(deal=deal), body, headers={"Accept-Language": language}
    )
    _same(lane, plain)
    assert lane.status_code == status and lane.json()["code"] == code
    assert lane["Content-Type"] == "application/problem+json"


def test_a_bad_token_is_the_same_401(api, deal):
    api.token = "falsch"
    lane, plain = _both(api, "post", f"/deals/{deal}/queue", {})
    _same(lane, plain)
    assert lane.status_code == 401 and lane.json()["code"] == "invalid_token"


@contextmanager
def _test_connection():
    """As Django's test client does: the test's transaction owns the database connection, so
    the request signals must not close it (they do in a real server)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _environ(method, path, body: bytes = b"", **extra):
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.errors": sys.stderr,
        "SCRIPT_NAME": "",
    }
    env.update(extra)
    return env


@pytest.mark.parametrize(
    "method, path, body, extra, status, code",
    [
        ("POST", "/api/v1/deals/{deal}/queue", b'{"email": ', {}, 400, "malformed_json"),
        (
            "POST",
            "/api/v1/deals/{deal}/queue",
            b'{"email": "a@example.de", "quantity": "1"}',
            {},
            422,
            "validation_error",
        ),
        (
            "POST",
            "/api/v1/deals/{deal}/queue",
            b'["a@example.de"]',
            {},
            422,
            "identity_required",
        ),  # Ninja reads a list as no fields
        (
            "POST",
            "/api/v1/deals/{deal}/queue",
            b'{"email": "a@example.de"}',
            {"CONTENT_TYPE": "text/plain"},
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/api/v1/deals/{deal}/queue",
            b'{"email": "a\\u0000@example.de"}',
            {},
            400,
            "invalid_characters",
        ),
        (
            "POST",
            "/api/v1/deals/{deal}/queue",
            b'{"email": "a@example.de", "x": "' + b"y" * 70000 + b'"}',
            {},
            413,
            "payload_too_large",
        ),
        ("POST", "/api/v1/deals/{deal}/queue/", b'{"email": "a@example.de"}', {}, 404, "not_found"),
        (
            "PUT",
            "/api/v1/deals/{deal}/queue",
            b'{"email": "a@example.de"}',
            {},
            405,
            "method_not_allowed",
        ),
        (
            "GET",
            "/api/v1/deals/{deal}/queue/abc",
            b"",
            {"QUERY_STRING": "x=%00"},
            400,
            "invalid_characters",
        ),
    ],
)
def test_what_the_lane_cannot_answer_goes_to_django_with_its_body(
    deal, method, path, body, extra, status, code
):
    from warenhaus.wsgi import application

    env = _environ(method, path.format(deal=deal), body, **extra)
    seen = []
    with _test_connection():
        assert fastlane.handle(dict(env, **{"wsgi.input": io.BytesIO(body)})) is None
        out = b"".join(application(env, lambda s, h: seen.append((s, h))))
    assert int(seen[0][0].split()[0]) == status and json.loads(out)["code"] == code, out[:300]


def test_the_wsgi_lane_answers_with_djangos_headers(deal):
    from warenhaus.wsgi import application, django_application

    answers = []
    for app in (application, django_application):
        seen = []
        with _test_connection():
            body = b"".join(
                app(
                    _environ(
                        "GET", f"/api/v1/deals/{deal}/queue/unbekannt", HTTP_ACCEPT_LANGUAGE="en"
                    ),
                    lambda s, h, seen=seen: seen.append((s, h)),
                )
            )
        answers.append((seen[0][0], sorted(seen[0][1]), json.loads(body)))
    assert answers[0] == answers[1]
    assert answers[0][0] == "404 Not Found" and answers[0][2]["code"] == "ticket_not_found"
    assert {
        "Content-Language",
        "Content-Length",
        "Vary",
        "X-Content-Type-Options",
        "X-Frame-Options",
    } <= {k for k, _ in answers[0][1]}


def test_a_host_not_allowed_goes_to_django(deal, settings):
    settings.ALLOWED_HOSTS = ["shop.example"]
    with _test_connection():
        assert fastlane.handle(_environ("GET", f"/api/v1/deals/{deal}/queue/abc")) is None


def test_off_means_django_answers_everything(api, deal, settings):
    settings.DEALS_FAST_LANE = False
    r = api.post(f"/deals/{deal}/queue", {"email": "a@example.de"})
    assert r.status_code == 201 and not getattr(r, "fast_lane", False)
    with _test_connection():
        assert fastlane.handle(_environ("GET", f"/api/v1/deals/{deal}/queue/abc")) is None


def test_the_limiter_stands_in_front_of_the_lane(api, deal, settings):
    settings.ADMISSION_MAX_IN_FLIGHT = 1
    settings.ADMISSION_WAIT_MS = 0
    g = limiter.gate("deal_join")
    assert g.enter(1, 0)
    try:
        r = api.post(f"/deals/{deal}/queue", {"email": "a@example.de"})
    finally:
        g.leave()
    assert (
        r.fast_lane
        and r.status_code == 429
        and r.json()["code"] == "overloaded"
        and int(r["Retry-After"]) >= 1
    )
    assert (
        api.post(f"/deals/{deal}/queue", {"email": "a@example.de"}).status_code == 201
    )  # nothing was done before
