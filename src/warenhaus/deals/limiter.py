"""Admission limiter: overload without 5xx (MISSION 3, issue 4).

A middleware in front of the expensive paths of a rush. Each path class has its own per-process
concurrency limit; a request of a class that is full waits a short, bounded time for a place and
is otherwise refused at once, cheaply, before it touches the database:

* API callers get ``429`` ``application/problem+json`` with the stable code ``overloaded`` and a
  ``Retry-After`` header (a few seconds, jittered so refused clients do not come back in step);
* browsers get a small "waiting room" page (also ``429`` with ``Retry-After``) that reloads itself
  after that many seconds, in German or English (gettext), rendered without any database access.

Path classes (everything else is never limited)::

    deal_join    POST /api/v1/deals/<id>/queue (joining the waiting room)
    deal_poll    /api/v1/deals/<id>/queue/<ticket> (polling a ticket)
    checkout     POST /api/v1/carts/<id>/checkout, POST /checkout/ (also /en/checkout/)
    deal_page    /deals/... and /en/deals/... (the storefront's deal pages)

Why per process and per class: a gunicorn gthread worker runs at most ``WEB_THREADS`` requests
at once and queues the rest unseen; if a rush fills every thread with queue joins and checkouts,
everything else (and the rush's own polls) waits until clients time out and proxies answer 5xx.
With at most ``WEB_THREADS - 1`` requests of one class in flight, each process keeps a thread for
the others, a class never starves the process, and the surplus gets a definite answer in
milliseconds instead of a timeout. Checkout submits are idempotent (``Idempotency-Key``; the
storefront form carries its own), so a client that retries after a 429 never orders twice; a
refused request did nothing at all.

Queue time. A gthread worker hands requests to its threads through an unbounded queue: in a
rush a request can wait there for a minute before the limiter (or anything in Django) sees it,
and its client has long given up. So the limiter also refuses a request of a limited class that
has already waited longer than ``ADMISSION_MAX_QUEUE_MS`` (refusing costs a millisecond, which
drains the queue instead of serving answers nobody waits for). What is under way goes first:
a checkout submit may wait 2.5 times that, a poll once, a new join a quarter (``QUEUE_SHARE``),
so in a rush the newcomers are turned away before the admitted are kept from buying. The wait is measured from the
``X-Request-Start`` header (``t=<epoch seconds, ms or µs>``, as nginx/Heroku-style proxies set
it); ``warenhaus serve`` (gunicorn, :func:`stamp_queue_time` as ``post_worker_init``) sets it
itself when a request is queued for a thread, replacing whatever the client sent.

A refused join keeps its arrival. Refusing a newcomer's join first would cost them their place
in a first-come-first-served line: whoever came later and got through would be ahead. So a
refused join's problem carries ``arrival``, a signed token of the moment the request reached the
server (gunicorn's queue stamp, else the moment it was refused), for this deal and this caller
(:func:`_caller_hint`: over the API the e-mail address and cart in the body, the API token, the
session cookie; in the storefront the browser's cookies); the retry sends it back in
its body and queues from then (:func:`arrival_from`, for ``ARRIVAL_MAX_AGE`` seconds). A token
that does not check out is ignored: the join counts from its own arrival.

Settings (environment variables of the same name):

    ADMISSION_MAX_IN_FLIGHT     requests of one class in flight per process
                                (default: WEB_THREADS - 1, at least 1; 0 turns the limiter off)
    ADMISSION_WAIT_MS           how long a request waits for a place before it is refused (75)
    ADMISSION_MAX_QUEUE_MS      refuse a request that has been queued longer than this (2000;
                                0: never)
    ADMISSION_RETRY_AFTER       Retry-After, seconds (default 2) ...
    ADMISSION_RETRY_JITTER      ... plus a random 0..this many seconds (default 2)
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import secrets
import threading
import time
from contextlib import contextmanager

from django.conf import settings
from django.core import signing
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.http.request import RawPostDataException
from django.utils import translation
from django.utils.html import escape
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from warenhaus.core.clock import now
from warenhaus.core.errors import is_capacity_error
from warenhaus.core.problems import problem

log = logging.getLogger("warenhaus.deals.limiter")

_LANG = r"(?:/(?:de|en))?"
#: (class, methods or None for every method, path pattern)
PATH_CLASSES: tuple[tuple[str, frozenset | None, re.Pattern], ...] = (
    ("deal_join", None, re.compile(r"^/api/v1/deals/[^/]+/queue/?$")),
    ("deal_poll", None, re.compile(r"^/api/v1/deals/[^/]+/queue/[^/]+/?$")),
    ("checkout", frozenset({"POST"}), re.compile(r"^/api/v1/carts/[^/]+/checkout/?$")),
    ("checkout", frozenset({"POST"}), re.compile(rf"^{_LANG}/checkout/?$")),
    ("deal_page", None, re.compile(rf"^{_LANG}/deals(?:/.*)?$")),
)


#: share of ADMISSION_MAX_QUEUE_MS each class may wait in the queue: what is under way goes
#: first (a checkout, then an admitted shopper's poll), a newcomer's join is shed soonest
QUEUE_SHARE = {"deal_join": 0.25, "deal_poll": 1.0, "checkout": 2.5, "deal_page": 1.0}


def path_class(method: str, path: str) -> str | None:
    """The class a request is limited in, or None (never limited)."""
    for name, methods, pattern in PATH_CLASSES:
        if (methods is None or method in methods) and pattern.match(path):
            return name
    return None


class Gate:
    """A counting gate whose limit is read at every entry (settings may change in tests)."""

    def __init__(self):
        self._cond = threading.Condition()
        self.in_flight = 0
        self.refused = 0

    def enter(self, limit: int, wait: float) -> bool:
        deadline = time.monotonic() + wait
        with self._cond:
            while self.in_flight >= limit:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.refused += 1
                    return False
                self._cond.wait(left)
            self.in_flight += 1
            return True

    def leave(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify()


_gates: dict[str, Gate] = {}
_gates_lock = threading.Lock()


def gate(name: str) -> Gate:
    found = _gates.get(name)
    if found is not None:
        return found
    with _gates_lock:
        return _gates.setdefault(name, Gate())


def max_in_flight() -> int:
    return int(getattr(settings, "ADMISSION_MAX_IN_FLIGHT", 3))


def retry_after() -> int:
    base = max(1, int(getattr(settings, "ADMISSION_RETRY_AFTER", 2)))
    jitter = max(0, int(getattr(settings, "ADMISSION_RETRY_JITTER", 2)))
    return base + (random.randint(0, jitter) if jitter else 0)  # noqa: S311 - spreading retries, not a secret


def _request_start(request) -> float | None:
    """``X-Request-Start`` in epoch seconds (None: none, or not a time)."""
    raw = request.META.get("HTTP_X_REQUEST_START", "").split(" ", 1)[0]
    if not raw:
        return None
    try:
        value = float(raw.split("=", 1)[1] if raw.startswith("t=") else raw)
    except ValueError:
        return None
    if value > 1e14:
        value /= 1e6  # microseconds
    elif value > 1e11:
        value /= 1e3  # milliseconds
    return value


def _own_stamp(request) -> dict[str, str] | None:
    """The parts of an ``X-Request-Start`` this process's server set (``t=... q=... wh=...``),
    or None (no stamp, or not the server's own)."""
    if not _server_stamps:
        return None
    parts = dict(
        p.split("=", 1) for p in request.META.get("HTTP_X_REQUEST_START", "").split() if "=" in p
    )
    return parts if secrets.compare_digest(parts.get("wh", ""), _server_stamps) else None


def queued_seconds(request) -> float | None:
    """How long the request waited for a thread, from ``X-Request-Start`` (None: unknown). The
    server's own stamp says how long exactly (``q``: queued until a thread took it up, so a
    worker's first, slow request does not count its own start-up as waiting); a proxy's only
    when it came, so everything since counts."""
    own = _own_stamp(request)
    if own is not None and own.get("q", "").isdigit():
        return int(own["q"]) / 1e6
    start = _request_start(request)
    return None if start is None else time.time() - start


#: the mark this process's server puts on the ``X-Request-Start`` it sets itself
#: (:func:`stamp_queue_time`; None: it sets none): only a stamp with it says when a request
#: arrived (a client can send any time, and a request may come by a path the hook does not see)
_server_stamps: str | None = None
#: how far back a server's stamp may date an arrival: a slow client that trickles its request in
#: would otherwise date its place from when it connected
ARRIVAL_STAMP_MAX_AGE = 10.0


def arrived_at(request) -> float | None:
    """When the request reached this server (epoch seconds), if the server stamped it (gunicorn's
    queue stamp; at most ``ARRIVAL_STAMP_MAX_AGE`` back); None: not known, it arrives now."""
    if _own_stamp(request) is None:
        return None
    start, at = _request_start(request), time.time()
    return None if start is None or start > at else max(start, at - ARRIVAL_STAMP_MAX_AGE)


def _now() -> float:
    return now().timestamp()


#: how long a refused join's arrival may be presented again (seconds)
ARRIVAL_MAX_AGE = 600
_ARRIVAL_SALT = "warenhaus.deals.arrival"
#: a join: over the API, or the storefront's join button
_JOIN_DEAL = re.compile(rf"^(?:/api/v1|{_LANG})/deals/([0-9]{{1,18}})/(?:queue|join)/?$")


def _caller_hint(request) -> str | None:
    """Whose arrival it is, as far as a request shows without a query (hashed; only compared),
    or None if it shows nobody. Over the API: the e-mail address and the cart in its JSON body,
    the API token, the session cookie. In the storefront: the browser's session and CSRF
    cookies (what the visitor types into the form may change between two tries)."""
    session = request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")
    if not request.path.startswith("/api/"):
        parts = [session, request.COOKIES.get(settings.CSRF_COOKIE_NAME, "")]
    else:
        data = None
        if request.content_type in ("application/json", "") or request.content_type.endswith(
            "+json"
        ):
            try:
                data = json.loads(request.body or b"{}")
            except (
                ValueError,
                RecursionError,
                RawPostDataException,
                RequestDataTooBig,
            ):  # not JSON (UnicodeDecodeError too), or unreadable
                data = None
        data = data if isinstance(data, dict) else {}
        email, cart = (
            str(data.get(k) or "").strip().lower() if isinstance(data.get(k), str) else ""
            for k in ("email", "cart_id")
        )
        parts = [email, cart, request.META.get("HTTP_AUTHORIZATION", ""), session]
    if not any(parts):
        return None
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def arrival_token(request) -> str | None:
    """For a refused join (API or storefront): its arrival, signed for this deal and caller."""
    match = _JOIN_DEAL.match(request.path)
    if match is None or request.method != "POST":
        return None
    hint = _caller_hint(request)
    if hint is None:  # nobody to keep the place for: a token anyone could present
        return None
    at = arrived_at(request) or _now()
    return signing.dumps({"d": int(match[1]), "t": round(at, 6), "h": hint}, salt=_ARRIVAL_SALT)


def arrival_from(request, deal_id: int, token: str) -> float | None:
    """The arrival a retried join presents (epoch seconds), if it is this deal's and this
    caller's, signed here and at most ``ARRIVAL_MAX_AGE`` seconds old; else None."""
    if not token:
        return None
    try:
        data = signing.loads(token, salt=_ARRIVAL_SALT, max_age=ARRIVAL_MAX_AGE)
    except signing.BadSignature:  # also SignatureExpired
        return None
    hint = _caller_hint(request)
    if (
        hint is None
        or not isinstance(data, dict)
        or data.get("d") != deal_id
        or data.get("h") != hint
    ):
        return None
    try:
        return min(float(data["t"]), _now())
    except (KeyError, TypeError, ValueError):
        return None


def stamp_queue_time(worker) -> None:
    """gunicorn ``post_worker_init``: note when each request is queued for a thread (gthread) and
    hand it to the app as ``X-Request-Start`` (replacing the client's), so the limiter can refuse
    what waited too long. Other worker classes have no queue of their own: nothing to do."""
    global _server_stamps

    enqueue, handle_request = (
        getattr(worker, "enqueue_req", None),
        getattr(worker, "handle_request", None),
    )
    if enqueue is None or handle_request is None:
        return
    _server_stamps = secrets.token_hex(8)

    def enqueue_req(conn):
        conn.wh_queued_at = time.time()
        return enqueue(conn)

    def handle_stamped(req, conn):
        at = getattr(conn, "wh_queued_at", None)
        if at is not None:
            req.headers = [(k, v) for k, v in req.headers if k.upper() != "X-REQUEST-START"] + [
                (
                    "X-REQUEST-START",
                    f"t={int(at * 1_000_000)} q={max(0, int((time.time() - at) * 1_000_000))} wh={_server_stamps}",
                )
            ]
        return handle_request(req, conn)

    worker.enqueue_req = enqueue_req
    worker.handle_request = handle_stamped


def _overloaded_api(seconds: int, arrival: str | None = None):
    extra = {"arrival": arrival} if arrival else {}
    resp = problem(
        429,
        "overloaded",
        "Too many requests right now",
        f"The server is at capacity for this kind of request. Nothing was done; please try again in {seconds} seconds."
        + (" Send `arrival` back with the retry to keep your place in line." if arrival else ""),
        retry_after=seconds,
        **extra,
    )
    resp["Retry-After"] = str(seconds)
    resp["Cache-Control"] = "no-store"
    return resp


_PAGE = """<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{refresh}">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#222}}
h1{{font-size:1.5rem}}.note{{color:#555}}</style></head>
<body><main><h1>{title}</h1><p>{lead}</p><p class="note">{note}</p><p class="note">{again}</p></main></body></html>
"""


def _waiting_page(request, seconds: int, arrival: str | None = None) -> HttpResponse:
    lang = translation.get_language_from_request(request, check_path=True) or settings.LANGUAGE_CODE
    with translation.override(lang):
        lang = translation.get_language()
        title = _("Just a moment, please")
        lead = _(
            "Many people are shopping right now. You are in the waiting room; this page tries again by itself in %(seconds)s seconds."
        ) % {"seconds": seconds}
        if arrival:
            note = _(
                "You keep your place in line: when the page is back, press the button to queue once more."
            )
        elif request.method == "POST":
            note = _(
                "Your order has not been placed yet. Please send it once more when the page is back; you will not be charged twice."
            )
        else:
            note = _("Please keep this page open; reloading it sooner does not get you in faster.")
        again = _("If nothing happens, reload the page.")
    # a refused join comes back to its deal's page with its arrival (the join button sends it)
    refresh = (
        f"{seconds}; url={request.path}?{urlencode({'arrival': arrival})}"
        if arrival
        else str(seconds)
    )
    body = _PAGE.format(
        lang=escape(lang),
        refresh=escape(refresh),
        title=escape(title),
        lead=escape(lead),
        note=escape(note),
        again=escape(again),
    )
    resp = HttpResponse(body, status=429, content_type="text/html; charset=utf-8")
    resp["Retry-After"] = str(seconds)
    resp["Cache-Control"] = "no-store"
    resp["Content-Language"] = lang
    return resp


def refusal(request) -> HttpResponse:
    """What a refused request gets: a problem for the API, the waiting-room page for browsers."""
    seconds = retry_after()
    if request.path.startswith("/api/"):
        return _overloaded_api(seconds, arrival_token(request))
    return _waiting_page(request, seconds, arrival_token(request))


@contextmanager
def admission(request, name: str | None):
    """Let one request of class ``name`` in (yields None; its place is given back afterwards) or
    refuse it (yields the refusal to answer with). A request of no class is always let in."""
    limit = max_in_flight() if name else 0
    if limit <= 0:
        yield None
        return
    g = gate(name)
    max_queue = (
        float(getattr(settings, "ADMISSION_MAX_QUEUE_MS", 2000)) / 1000 * QUEUE_SHARE.get(name, 1.0)
    )
    queued = queued_seconds(request) if max_queue > 0 else None
    if queued is not None and queued > max_queue:
        g.refused += 1
        log.info(
            "overloaded: refused %s %s (%s: queued %.1f s)",
            request.method,
            request.path,
            name,
            queued,
        )
        yield refusal(request)
        return
    wait = max(0.0, float(getattr(settings, "ADMISSION_WAIT_MS", 75)) / 1000)
    if not g.enter(limit, wait):
        log.info(
            "overloaded: refused %s %s (%s: %s in flight)",
            request.method,
            request.path,
            name,
            g.in_flight,
        )
        yield refusal(request)
        return
    try:
        yield None
    finally:
        g.leave()


class AdmissionLimiterMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with admission(request, path_class(request.method, request.path)) as refused:
            if refused is not None:
                return refused
            return self.get_response(request)

    def process_exception(self, request, exc):
        """A page whose database had no room for it this moment (the API answers its own
        ``overloaded`` problem) gets the waiting-room page, 429 with ``Retry-After``, not a 500."""
        if request.path.startswith("/api/") or not is_capacity_error(exc):
            return None
        log.warning(
            "database at capacity in %s %s: %s",
            request.method,
            request.path,
            str(exc).splitlines()[0][:200],
        )
        return refusal(
            request
        )  # as the limiter's own: jittered, and a refused join keeps its arrival
