"""The incident of MISSION 3, replayed over HTTP against the production server (gunicorn, 3
workers x 4 threads) and the real worker sweep (``warenhaus worker --deals-interval 0.5``), on
PostgreSQL.

A deal of 100 units, at most 2 per customer, holds of 2 minutes. 1,000 virtual shoppers (asyncio
tasks on keep-alive HTTP connections) join the waiting room over ten seconds around the start
(half of them in the pre-queue), poll their tickets, and check out with an Idempotency-Key when
admitted, honouring 429 + Retry-After from the admission limiter. Every tenth shopper admitted
abandons the hold; those units come back at its deadline to the people still in line, who
(by the test's rule: let in after the first hold ran out) give them up at once (they remove the
line from the cart), so that the units come back once more when the line is empty and go to the
wait list in order, by mail (the outbox); whoever gets an offer buys it.

At the end: exactly 100 units sold (Deal.sold, the sales, the order lines), ``sold + held`` never
above 100 while it ran (sampled), not one 5xx, every shopper with a definite answer (bought,
sold out with a wait-list place, or an expired hold after abandoning), no hold ended before its
deadline, wait-list offers in order (always the lowest waiting entries), one mail per offer.

Sizes: 1,000 shoppers, 100 units and a 2-minute hold take about three minutes, most of it
waiting for the abandoned holds to run out. The hold is the one knob against a slow machine:
an admitted shopper must get a poll and a checkout through within it while the other 900 join
(INCIDENT_HOLD_MINUTES, INCIDENT_SHOPPERS, INCIDENT_TIMEOUT tune a run).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest

try:
    from tests.concurrency.conftest import live_gunicorn, seed_variant  # noqa: F401 - fixtures
    from tests.concurrency.support import SRC, database_url_for_current_test_db
    from tests.conftest import requires_postgres
except ImportError:  # tests/ is not a package; pytest puts it on sys.path as the rootdir conftest
    from concurrency.conftest import live_gunicorn, seed_variant  # noqa: F401
    from concurrency.support import SRC, database_url_for_current_test_db
    from conftest import requires_postgres

pytestmark = [
    pytest.mark.postgres,
    requires_postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("pg-concurrency"),
]

SHOPPERS = int(os.environ.get("INCIDENT_SHOPPERS", "1000"))
UNITS = 100
LIMIT = 2
CONNECTIONS = (
    400  # client side keep-alive connections shared by the shoppers (a browser each would be 1,000)
)
LEAD = 12.0  # seconds from the deal's creation to its start (server warm-up, pre-queue)
JOIN_SPREAD = 10.0  # shoppers join from start - 5 s to start + 5 s
HOLD_MINUTES = int(os.environ.get("INCIDENT_HOLD_MINUTES", "2"))
TIMEOUT = float(os.environ.get("INCIDENT_TIMEOUT", "420"))


@pytest.fixture(params=["db", "redis"])
def room_backend(request, monkeypatch, settings):
    """Both waiting rooms: the embedded one and Redis (the real server; server, worker and this
    process share a prefix of the test's own, removed afterwards)."""
    monkeypatch.setenv("WAITING_ROOM_BACKEND", request.param)
    settings.WAITING_ROOM_BACKEND = request.param
    if request.param == "db":
        yield "db"
        return
    from .conftest import REDIS_URL, redis_or_skip

    redis_or_skip()
    prefix = f"wrincident-{uuid.uuid4().hex[:10]}"
    for name, value in (("WAITING_ROOM_REDIS_URL", REDIS_URL), ("WAITING_ROOM_PREFIX", prefix)):
        monkeypatch.setenv(name, value)
        setattr(settings, name, value)
    yield "redis"
    from warenhaus.deals.waiting_room import waiting_room

    room = waiting_room()
    for key in list(room.client.scan_iter(match=f"{prefix}:*", count=1000)):
        room.client.unlink(key)


@pytest.fixture
def server(monkeypatch, request, room_backend):
    # short Retry-After so refused shoppers come back soon; the limiter as in production
    monkeypatch.setenv("ADMISSION_RETRY_AFTER", "1")
    monkeypatch.setenv("ADMISSION_RETRY_JITTER", "1")
    return request.getfixturevalue("live_gunicorn")


@pytest.fixture
def deal_worker(server, tmp_path):
    """The worker's flash-deal sweep every 0.5 s (expiry, admission, offers), as a process of its
    own on the test database. It serves no task queue: the offer mails stay in the outbox,
    where the test reads them as the shoppers' inboxes."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url_for_current_test_db(),
            "DJANGO_SETTINGS_MODULE": "warenhaus.settings",
            "WARENHAUS_VAR": str(tmp_path / "var"),
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH", "")])),
        }
    )
    env.pop("REDIS_URL", None)
    log_path = tmp_path / "worker.log"
    cmd = [
        sys.executable,
        "-m",
        "warenhaus.cli",
        "worker",
        "--deals-interval",
        "0.5",
        "--requeue-interval",
        "0",
        "--monitor-interval",
        "0",
        "--queue-name",
        "incident-none",
        "--interval",
        "5",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=str(tmp_path),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=5)


class Run:
    def __init__(self, base_url: str, deal_id: int, start: float, sku: str = ""):
        self.base = f"{base_url}/api/v1"
        self.sku = sku
        self.deal_id = deal_id
        self.start = start  # time.time() of the deal's start
        self.statuses: Counter = Counter()
        self.transport_errors: Counter = Counter()
        self.fivexx: list = []
        self.errors: list = []
        self.outcomes: dict[int, dict] = {}
        self.first_expiry = threading.Event()
        self.inbox: dict[str, asyncio.Queue] = {}
        self.closing: asyncio.Event | None = None
        self.latency: dict[str, list[float]] = {"join": [], "poll": [], "checkout": []}


def _address(i: int) -> dict:
    return {
        "name": f"Kundin {i}",
        "street": f"Ansturmweg {i}",
        "postal_code": f"{10000 + i}",
        "city": "Köln",
        "country": "DE",
    }


async def _call(run: Run, http, kind: str, method: str, path: str, **kw):
    """One request, again after Retry-After while the server says 429. Every request here may
    be repeated (joining twice keeps one ticket, a checkout has its Idempotency-Key), so a
    connection the server closed as we reused it (keep-alive) is tried again, and counted."""
    import httpx

    for _ in range(200):
        t0 = time.monotonic()
        try:
            r = await http.request(method, run.base + path, **kw)
        except (httpx.RemoteProtocolError, httpx.ConnectError, httpx.ReadError) as exc:
            run.transport_errors[type(exc).__name__] += 1
            await asyncio.sleep(random.uniform(0.2, 1.0))
            continue
        run.latency.setdefault(kind, []).append(time.monotonic() - t0)
        run.statuses[r.status_code] += 1
        if r.status_code >= 500:
            run.fivexx.append((method, path, r.status_code, r.text[:300]))
        if r.status_code != 429:
            return r
        assert r.headers.get("Retry-After", "").isdigit(), r.headers
        assert r.json()["code"] == "overloaded"
        await asyncio.sleep(int(r.headers["Retry-After"]) * random.uniform(0.6, 1.0))
    raise AssertionError(f"{method} {path}: still 429 after 200 tries")


async def _checkout(run: Run, http, i: int, cart_id: str) -> object:
    body = {
        "email": f"s{i}@rush.example",
        "shipping_address": _address(i),
        "payment_method": "invoice",
    }
    key = str(uuid.uuid4())  # the same key on every retry: a retry never orders twice
    return await _call(
        run,
        http,
        "checkout",
        "POST",
        f"/carts/{cart_id}/checkout",
        json=body,
        headers={"Idempotency-Key": key},
    )


async def _shopper(run: Run, http, i: int):
    out = run.outcomes[i] = {"answer": None}
    email = f"s{i}@rush.example"
    quantity = 1 if i % 3 == 0 else 2
    await asyncio.sleep(
        max(0.0, run.start - JOIN_SPREAD / 2 + JOIN_SPREAD * i / SHOPPERS - time.time())
    )
    r = await _call(
        run,
        http,
        "join",
        "POST",
        f"/deals/{run.deal_id}/queue",
        json={"quantity": quantity, "email": email},
    )
    assert r.status_code == 201, (r.status_code, r.text)
    t = r.json()
    out["ticket"] = t["ticket"]
    while t["state"] == "waiting":
        await asyncio.sleep(
            t["poll_after_seconds"] * random.uniform(0.8, 1.2)
        )  # as the server asks
        r = await _call(run, http, "poll", "GET", f"/deals/{run.deal_id}/queue/{t['ticket']}")
        assert r.status_code == 200, (r.status_code, r.text)
        t = r.json()
    out["state"] = t["state"]
    if t["state"] == "admitted":
        out["hold"] = t["hold"]
        # every tenth shopper walks away from the hold; and whoever is let in with the units of
        # an abandoned hold (after the first one ran out) walks away too, so that units come back
        # once more when the line is empty and go to the wait list
        if i % 10 == 7:
            out["answer"] = "abandoned"  # walks away: the hold runs out at its deadline
            return
        if run.first_expiry.is_set():
            # let in with the units of an abandoned hold: removes the line again at once, so the
            # units come back while the line is empty and go to the wait list
            r = await _call(
                run, http, "release", "DELETE", f"/carts/{t['cart_id']}/lines/{run.sku}"
            )
            assert r.status_code == 200, (r.status_code, r.text)
            out["answer"] = "abandoned"
            return
        r = await _checkout(run, http, i, t["cart_id"])
        assert r.status_code == 201, (r.status_code, r.text)
        out.update(answer="bought", quantity=t["hold"]["quantity"], order=r.json()["number"])
        return
    assert t["state"] == "sold_out", t
    assert t["waitlist"] and t["waitlist"]["position"] >= 1, (
        t
    )  # a definite answer: sold out, with a place
    out.update(answer="waitlisted", entry=t["waitlist"]["entry"])
    inbox = run.inbox.setdefault(email, asyncio.Queue())
    mail = asyncio.ensure_future(inbox.get())
    closing = asyncio.ensure_future(run.closing.wait())
    await asyncio.wait({mail, closing}, return_when=asyncio.FIRST_COMPLETED)
    if not mail.done():
        mail.cancel()
        return
    closing.cancel()
    r = await _call(run, http, "poll", "GET", f"/deals/{run.deal_id}/waitlist/{out['entry']}")
    offer = r.json()
    assert offer["status"] == "offered" and offer["cart_id"], offer
    r = await _checkout(run, http, i, offer["cart_id"])
    assert r.status_code == 201, (r.status_code, r.text)
    out.update(
        answer="bought",
        from_waitlist=True,
        quantity=offer["hold"]["quantity"],
        order=r.json()["number"],
    )


class Watcher(threading.Thread):
    """The test's eyes on the database while the rush runs: ``sold + held`` every 50 ms, and the
    outbox (offer mails go to the shoppers' inboxes)."""

    def __init__(self, run: Run, loop):
        super().__init__(name="incident-watcher", daemon=True)
        self.run_, self.loop = run, loop
        self.stop = threading.Event()
        self.samples = 0
        self.max_committed = 0
        self.offers_seen: list = []  # (entry id, offered moment, lowest waiting id then)
        self.done = threading.Event()
        self.error = None

    def run(self):
        from django.db import connection

        from warenhaus.deals.models import Deal, Hold
        from warenhaus.notifications.models import OutboxMessage

        seen = 0
        try:
            while not self.stop.is_set():
                d = Deal.objects.values("sold", "held").get(pk=self.run_.deal_id)
                self.samples += 1
                self.max_committed = max(self.max_committed, d["sold"] + d["held"])
                for mail_id, to in (
                    OutboxMessage.objects.filter(kind="deal_offer", pk__gt=seen)
                    .order_by("pk")
                    .values_list("pk", "to_email")
                ):
                    seen = mail_id
                    q = self.run_.inbox.get(to)
                    if q is not None:
                        self.loop.call_soon_threadsafe(q.put_nowait, mail_id)
                if d["sold"] == UNITS and d["held"] == 0:
                    self.done.set()
                if (
                    not self.run_.first_expiry.is_set()
                    and Hold.objects.filter(deal_id=self.run_.deal_id, status="expired").exists()
                ):
                    self.run_.first_expiry.set()
                time.sleep(0.05)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            connection.close()


async def _rush(run: Run, watcher_box: list):
    import httpx

    run.closing = asyncio.Event()
    watcher = Watcher(run, asyncio.get_running_loop())
    watcher_box.append(watcher)
    watcher.start()
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0, pool=None)) as http:
        tasks = [asyncio.ensure_future(_shopper(run, http, i)) for i in range(SHOPPERS)]
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            undone = [t for t in tasks if not t.done()]
            # done: everything sold, nothing held, and nobody but the wait list is still waiting
            if watcher.done.is_set() and all(
                run.outcomes.get(i, {}).get("answer") == "waitlisted"
                for i, t in enumerate(tasks)
                if not t.done()
            ):
                break
            if not undone:
                break
        run.closing.set()
        await asyncio.wait(tasks, timeout=30)
        watcher.stop.set()
        for i, t in enumerate(tasks):
            if not t.done():
                t.cancel()
                run.errors.append((i, "never finished", run.outcomes.get(i)))
            elif t.exception() is not None:
                exc = t.exception()
                run.errors.append((i, repr(exc)[:500], run.outcomes.get(i)))
    watcher.join(5)


def test_the_rush_of_mission_3_replayed_over_http(server, deal_worker, seed_variant):
    from django.db.models import Sum
    from django.utils import timezone

    from warenhaus.deals import services
    from warenhaus.deals.models import Deal, Hold, Sale, WaitlistEntry
    from warenhaus.notifications.models import OutboxMessage
    from warenhaus.orders.models import OrderLine

    variant = seed_variant(on_hand=UNITS + 20, price="119.99")
    begin = time.monotonic()
    start = timezone.now() + timedelta(seconds=LEAD)
    deal = services.create_deal(
        actor=None,
        sku=variant.sku,
        deal_price="49.97",
        units=UNITS,
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        limit_per_customer=LIMIT,
        hold_minutes=HOLD_MINUTES,
        offer_minutes=1,
        admissions_per_minute=6000,
    )
    run = Run(server.base_url, deal.pk, start.timestamp(), variant.sku)
    box: list = []
    asyncio.run(_rush(run, box))
    watcher = box[0]
    took = time.monotonic() - begin
    server_log = "\n".join(
        line
        for line in server.log_path.read_text(errors="replace").splitlines()
        if "Too Many Requests" not in line
    )
    logs = f"\n--- server log ---\n{server_log[-15000:]}\n--- worker log ---\n{deal_worker[1].read_text(errors='replace')[-5000:]}"
    answers = Counter(o["answer"] for o in run.outcomes.values())
    lat = {k: sorted(v) for k, v in run.latency.items() if v}
    summary = {
        k: f"n={len(v)} p50={v[len(v) // 2] * 1000:.0f}ms p95={v[int(len(v) * 0.95)] * 1000:.0f}ms max={v[-1] * 1000:.0f}ms"
        for k, v in lat.items()
    }
    print(
        f"\nincident: {took:.0f} s, answers {dict(answers)}, statuses {dict(run.statuses)}, transport {dict(run.transport_errors)}, "
        f"samples {watcher.samples}, max sold+held {watcher.max_committed}\n{summary}"
    )

    # not one 5xx, no client error, everyone answered
    assert not run.fivexx, f"{len(run.fivexx)} 5xx: {run.fivexx[:5]}" + logs
    assert not run.errors, f"{len(run.errors)} shoppers failed: {run.errors[:5]}" + logs
    assert watcher.error is None, watcher.error
    assert (
        set(answers) <= {"bought", "waitlisted", "abandoned"} and sum(answers.values()) == SHOPPERS
    ), answers

    # exactly the contingent sold, never more committed than it
    d = Deal.objects.get(pk=deal.pk)
    assert (d.sold, d.held) == (UNITS, 0), (d.sold, d.held)
    assert (
        Sale.objects.filter(deal=deal, returned_at__isnull=True).aggregate(n=Sum("quantity"))["n"]
        == UNITS
    )
    assert OrderLine.objects.filter(variant=variant).aggregate(n=Sum("quantity"))["n"] == UNITS
    assert (
        sum(o.get("quantity", 0) for o in run.outcomes.values() if o["answer"] == "bought") == UNITS
    )
    assert watcher.samples > 100 and watcher.max_committed <= UNITS

    # abandoned holds ran out at their deadline, not a moment before; their tickets say so
    expired = list(Hold.objects.filter(deal=deal, status="expired"))
    assert expired and all(h.ended_at >= h.expires_at for h in expired)
    abandoned = [o for o in run.outcomes.values() if o["answer"] == "abandoned"]
    given_back = Hold.objects.filter(deal=deal, source="queue", status__in=["expired", "released"])
    assert len(abandoned) == given_back.count()
    import httpx

    with httpx.Client(base_url=run.base, timeout=30) as http:
        for o in abandoned:
            assert http.get(f"/deals/{deal.pk}/queue/{o['ticket']}").json()["state"] == "expired"

    # the wait list: offers to the lowest waiting entries, in order, one mail each, and only
    # once the line was empty (the units of the last abandoned holds)
    entries = list(WaitlistEntry.objects.filter(deal=deal).order_by("order_key", "id"))
    offered = [e for e in entries if e.offered_at is not None]
    assert offered, "no unit came back to the wait list"
    assert offered == entries[: len(offered)]
    assert [e.offered_at for e in offered] == sorted(e.offered_at for e in offered)
    offer_holds = list(Hold.objects.filter(deal=deal, source="waitlist"))
    assert len(offer_holds) == len(offered)
    mails = OutboxMessage.objects.filter(kind="deal_offer")
    assert sorted(mails.values_list("dedupe_key", flat=True)) == sorted(
        f"deal_offer:{h.pk}" for h in offer_holds
    )
    assert {m.to_email for m in mails} == {e.email for e in offered}
    # queue first, then the wait list: the admitter (one at a time) offers returned units only
    # once nobody waits in line (all shoppers joined long before the first hold ran out)
    last_queue_hold = max(h.created_at for h in Hold.objects.filter(deal=deal, source="queue"))
    assert all(h.created_at >= last_queue_hold for h in offer_holds), (
        "a wait-list offer before someone in line got the unit"
    )
    from warenhaus.deals.waiting_room import waiting_room

    assert waiting_room().counts(deal.pk)["waiting"] == 0
    print(f"offers {len(offered)}, expired holds {len(expired)}")
