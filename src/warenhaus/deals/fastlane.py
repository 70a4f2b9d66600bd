"""The waiting room's fast lane: a rush's two commonest requests without the framework's
overhead.

In a flash sale almost every request is one of two: joining the waiting room
(``POST /api/v1/deals/<id>/queue``) and polling a ticket (``GET /api/v1/deals/<id>/queue/<ticket>``).
Their own work is one Redis script or one statement (a few tenths of a millisecond); Django's
request cycle and Ninja's operation around them cost several times that (docs/benchmarks.md),
which on two cores capped joins far below the 1,000 per second issue 4 asks for.

:class:`FastLane` is a WSGI wrapper in front of Django (``warenhaus.wsgi``) that answers exactly
these two requests by calling what Django would call: the same Ninja view functions
(:mod:`warenhaus.deals.api`), the admission limiter (:func:`warenhaus.deals.limiter.admission`), the
API's exception handlers and renderer (so errors are the same problems with the same codes; the
root API hands itself over with :func:`serve_with`, as the URLconf loads it), the
request signals (database connections are looked after as in any request) and the response
middleware that adds headers (security, cache control, locale, common, clickjacking). So the answer is the one
Django gives, which ``tests/deals/test_fastlane.py`` compares header by header; what the lane
skips is URL resolution, the rest of the middleware chain (sessions, CSRF, authentication,
messages: the API uses none of them) and Ninja's per-operation machinery.

It takes a request only when it is sure to answer as Django would: anything else (a trailing
slash, another method, a body that is not a JSON object the schema accepts, a content type other
than JSON, a NUL character, an empty or over-long body, a host not allowed, an HTTPS redirect)
goes on to Django unchanged (the body it read is put back). ``DEALS_FAST_LANE=0`` turns it off.
"""

from __future__ import annotations

import io
import json
import logging
import re
from importlib import import_module

from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost, PermissionDenied
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.locale import LocaleMiddleware
from django.middleware.security import SecurityMiddleware
from pydantic import ValidationError

from warenhaus.core.middleware import CacheControlMiddleware

from . import api as deals_api
from .limiter import admission

log = logging.getLogger("warenhaus.deals.fastlane")

JOIN = re.compile(r"/api/v1/deals/(?P<deal_id>[0-9]{1,18})/queue")
POLL = re.compile(r"/api/v1/deals/(?P<deal_id>[0-9]{1,18})/queue/(?P<ticket>[A-Za-z0-9_-]{1,64})")


def _never(request):  # the middleware below are used for their hooks only
    raise AssertionError("not called")


class _Middleware:
    def __init__(self):
        self.security = SecurityMiddleware(_never)
        self.cache = CacheControlMiddleware(_never)
        self.common = CommonMiddleware(_never)
        self.locale = LocaleMiddleware(_never)
        self.xframe = XFrameOptionsMiddleware(_never)


_middleware: _Middleware | None = None
#: the NinjaAPI whose renderer and exception handlers answer (the root API, :func:`serve_with`)
_api = None


def serve_with(api) -> None:
    """Answer with ``api``'s renderer and exception handlers (the root URLconf calls this with
    the API it mounts, so the lane needs no import of a higher layer)."""
    global _api
    _api = api


def _the_api():
    if _api is None:  # a first request before Django's: loading the URLconf hands the API over
        import_module(settings.ROOT_URLCONF)
    return _api


def _mw() -> _Middleware:
    global _middleware
    if _middleware is None:
        _middleware = _Middleware()
    return _middleware


def enabled() -> bool:
    return bool(getattr(settings, "DEALS_FAST_LANE", True))


def _read_join_body(environ):
    """The join's payload, validated as Ninja would, or None (Django then answers, also with the
    error). The body read is put back into ``environ`` either way."""
    ctype = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if ctype != "application/json" and not ctype.endswith("+json"):
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if not 0 < length <= settings.API_MAX_BODY_BYTES:
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    if len(body) != length or b"\x00" in body or b"\\u0000" in body:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # Django answers (a 400 problem)
        return None
    if not isinstance(data, dict):
        return None
    try:
        return deals_api.QueueIn.model_validate(data)
    except ValidationError:
        return None


def handle(environ) -> HttpResponse | None:
    """The answer to a join or a poll, or None: Django answers this request."""
    if not enabled():
        return None
    method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
    if (
        environ.get("SCRIPT_NAME")
        or "\x00" in environ.get("QUERY_STRING", "")
        or "%00" in environ.get("QUERY_STRING", "")
    ):
        return None
    payload = None
    if method == "POST":
        match, name = JOIN.fullmatch(path), "deal_join"
        if match is not None:
            payload = _read_join_body(environ)
            if payload is None:
                return None
    elif method == "GET":
        match, name = POLL.fullmatch(path), "deal_poll"
    else:
        return None
    if match is None:
        return None
    mw = _mw()
    request = WSGIRequest(environ)
    try:
        if (
            mw.security.process_request(request) is not None
            or mw.common.process_request(request) is not None
        ):
            return None  # a redirect: Django gives it
    except (DisallowedHost, PermissionDenied):
        return None  # Django's own 400/403
    signals.request_started.send(sender=FastLane, environ=environ)
    try:
        return _answer(request, name, match, payload, mw)
    finally:
        signals.request_finished.send(sender=FastLane)


def _answer(request, name: str, match, payload, mw: _Middleware) -> HttpResponse:
    api = _the_api()
    mw.locale.process_request(request)
    with admission(request, name) as refused:
        if refused is not None:
            response = refused
        else:
            try:
                if name == "deal_join":
                    status, data = deals_api.join(request, match["deal_id"], payload)
                else:
                    status, data = deals_api.ticket(request, match["deal_id"], match["ticket"])
                response = api.create_response(request, data, status=status)
            except Exception as exc:  # noqa: BLE001 - the API's handlers decide, as in Ninja
                response = api.on_exception(request, exc)
    # the response hooks of settings.MIDDLEWARE that touch an API answer, innermost first
    response = mw.xframe.process_response(request, response)
    response = mw.common.process_response(request, response)
    response = mw.locale.process_response(request, response)
    response = mw.cache.process_response(request, response)
    return mw.security.process_response(request, response)


class FastLane:
    """WSGI: joins and polls answered here, everything else by ``app`` (Django)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        response = handle(environ)
        if response is None:
            return self.app(environ, start_response)
        headers = [
            *response.items(),
            *(("Set-Cookie", c.OutputString()) for c in response.cookies.values()),
        ]
        start_response(f"{response.status_code} {response.reason_phrase}", headers)
        return [response.content]
