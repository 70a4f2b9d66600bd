"""A flash sale against the production server: a rush of shoppers through the waiting room.

    .venv/bin/python bench/flash_sale.py [--backends db,redis] [--shoppers 5000] [--units 500]
                                         [--arrival-seconds 10] [--start-after 3] [--json FILE]

For each waiting-room back end, in order:

1. drops and creates the PostgreSQL database ``--db`` (default ``wh_bench_flash``) and migrates it;
2. starts gunicorn with the shop's production configuration (``warenhaus.gunicorn_conf``,
   production worker count; the access log goes to a file with only request class, status and
   the server's own time, for the per-class server times) with ``WAITING_ROOM_BACKEND`` set,
   ``REDIS_URL=redis://127.0.0.1:6379/0`` and a fresh ``WAITING_ROOM_PREFIX``; and the worker
   (``warenhaus worker --deals-interval 1``: the sweep that admits, expires and offers);
3. in a seed subprocess, through the services: one product and a deal of ``--units`` units at
   49.97 EUR (regular 119.99) that starts ``--start-after`` seconds after the first shopper
   arrives, so the first ``--pre-queue`` shoppers join the pre-queue (shuffled at the start);
4. a separate load-generator process (asyncio, the minimal keep-alive client of
   bench/checkout.py) lets ``--shoppers`` virtual shoppers arrive: ``--pre-queue`` of them spread
   evenly over the ``--start-after`` seconds before the start, the rest evenly (with jitter)
   over the remaining ``--arrival-seconds``. Each joins the queue (``POST
   /api/v1/deals/{id}/queue`` with an e-mail address), polls its ticket every
   ``--poll-interval`` seconds until ``admitted``/``sold_out``/``expired`` (or
   ``--poll-timeout``; a ``poll_after_seconds`` in the answer is obeyed), and once admitted
   checks out the held cart (``--checkout-share`` of them; an ``Idempotency-Key``, its own
   address; 429 is retried after ``Retry-After``, a refused join with the 429's ``arrival``). All shoppers share ``--connections`` keep-alive connections; a request's latency counts from the
   moment the shopper wants to send it (waiting for a free connection included);
5. meanwhile samples the deal's counters every 100 ms (oversell: ``sold + held`` above the
   contingent at any moment), the server's RSS, and the CPU of gunicorn, the worker,
   PostgreSQL (the bench database's backends), Redis and the load generator;
6. checks the database afterwards (deal counters, holds, sales, orders, stock, household
   limits) and computes fairness: among the admitted shoppers who arrived after the start,
   how far admission order (hold ids) strays from arrival order (Kendall tau, mean displacement,
   shoppers overtaken); among the pre-queue, that admission order is *not* arrival order
   (a shuffle: tau near 0).

Targets (issue 4, 2-core machine): 0 5xx, 0 oversell, >= 1,000 queue joins per second, status
poll p99 < 100 ms. The exit code is non-zero on any 5xx or oversell (missed speed targets are
reported, not fatal). Note: 5,000 shoppers over 10 s *offer* 500 joins/s on average; the
achieved join rate is reported over the arrival window and per busiest second, and
``--arrival-seconds 5`` offers 1,000/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from datetime import UTC

from checkout import (  # noqa: E402
    Connection,
    CpuMeter,
    Disconnected,
    Sampler,
    drop_database,
    free_port,
    lat,
    machine_busy_seconds,
    postgres_pids,
    process_tree,
    recreate_database,
    serve_phases,
    start_server,
    stop_server,
    warenhaus_cmd,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
PRE_QUEUE_SPAN = 2**52  # order keys below this were drawn for the pre-queue (waiting_room/base.py)
TARGETS = {"join_per_s": 1000.0, "poll_p99_ms": 100.0}
CLASSES = ("join", "poll", "checkout")
ACCESS_FORMAT = "%({x-bench-class}i)s %(s)s %(D)s"


# --- the load generator (its own process) -------------------------------------------------------


def _address(i: int) -> dict:
    return {
        "name": f"Kundin {i}",
        "street": f"Lasttestweg {i}",
        "postal_code": f"{10000 + i % 89999:05d}",
        "city": "Köln",
        "country": "DE",
    }


def _status_class(status: int) -> str:
    if status == 0:
        return "conn_error"
    if status == 429:
        return "429"
    return f"{status // 100}xx"


async def _flash(host, port, p, rec):
    pool: asyncio.Queue = asyncio.Queue()
    conns = [Connection(host, port) for _ in range(p["connections"])]
    for c in conns:
        pool.put_nowait(c)
    deal = p["deal_id"]
    t0 = p["t0"]
    hard_deadline = t0 + p["max_seconds"]
    rng = random.Random(p["seed"])
    shoppers = rec["shoppers"]

    async def call(cls, method, path, body=None, headers=None):
        t_want = time.perf_counter()
        conn = await pool.get()
        t_send = time.perf_counter()
        hdrs = {"X-Bench-Class": cls, **(headers or {})}
        try:
            status, rh, data = await conn.request(method, path, body, hdrs)
        except (
            ConnectionError,
            Disconnected,
            asyncio.IncompleteReadError,
            ValueError,
            IndexError,
        ) as err:
            conn.close()
            status, rh, data = 0, {}, repr(err).encode()
        finally:
            pool.put_nowait(conn)
        t_done = time.perf_counter()
        sc = _status_class(status)
        rec["status"][cls][sc] = rec["status"][cls].get(sc, 0) + 1
        if 200 <= status < 300:
            rec["lat"][cls].append(t_done - t_want)
            rec["service"][cls].append(t_done - t_send)
        if status >= 500 or status == 0:
            rec["errors"].append(
                {
                    "class": cls,
                    "status": status,
                    "at": time.time(),
                    "path": path,
                    "body": data[:600].decode(errors="replace"),
                }
            )
        elif status >= 400 and status != 429 and len(rec["samples_4xx"]) < 20:
            rec["samples_4xx"].append(
                {"class": cls, "status": status, "body": data[:300].decode(errors="replace")}
            )
        rec["done_at"].append((time.time(), cls, status))
        return status, rh, data

    async def with_429(cls, method, path, body=None, headers=None, attempts=10):
        for _ in range(attempts):
            status, rh, data = await call(cls, method, path, body, headers)
            if status == 429:
                try:
                    wait = float(rh.get("retry-after", "1"))
                except ValueError:
                    wait = 1.0
                rec["retries_429"] += 1
                try:
                    arrival = json.loads(data).get("arrival")
                except (ValueError, AttributeError):
                    arrival = None
                if (
                    arrival and body is not None
                ):  # a refused join: the retry keeps its place in line
                    body = json.dumps({**json.loads(body), "arrival": arrival}).encode()
                await asyncio.sleep(min(wait, 10.0))
                continue
            return status, rh, data
        return status, rh, data

    async def shopper(i, arrive_at, buys):
        s = {"i": i, "scheduled": arrive_at}
        shoppers.append(s)
        await asyncio.sleep(max(0.0, arrive_at - time.time()))
        s["join_sent"] = time.time()
        body = json.dumps({"email": f"kundin{i}@bench.example"}).encode()
        status, _, data = await with_429("join", "POST", f"/api/v1/deals/{deal}/queue", body)
        s["join_done"] = time.time()
        s["join_status"] = status
        if status != 201:
            s["outcome"] = f"join_{status}"
            return
        j = json.loads(data)
        ticket, state = j.get("ticket"), j.get("state")
        s["ticket"], s["first_state"], s["first_position"] = ticket, state, j.get("position")
        polls = errors = 0
        give_up = min(s["join_done"] + p["poll_timeout"], hard_deadline)
        hint = j.get("poll_after_seconds")
        wait = (
            max(p["poll_interval"], float(hint))
            if isinstance(hint, (int, float))
            else p["poll_interval"]
        )
        while state == "waiting" and ticket and time.time() < give_up:
            await asyncio.sleep(wait)
            status, _, data = await with_429("poll", "GET", f"/api/v1/deals/{deal}/queue/{ticket}")
            polls += 1
            if status != 200:
                errors += 1
                if errors >= 5:
                    break
                continue
            j = json.loads(data)
            state = j.get("state")
            # a server that says when to ask again is obeyed (never more often than --poll-interval)
            hint = j.get("poll_after_seconds")
            wait = (
                max(p["poll_interval"], float(hint))
                if isinstance(hint, (int, float))
                else p["poll_interval"]
            )
        s["polls"], s["final_state"] = polls, state
        if state != "admitted":
            s["outcome"] = (
                state
                if state in ("sold_out", "expired")
                else ("poll_timeout" if state == "waiting" else f"poll_{state}")
            )
            return
        s["admitted_seen"] = time.time()
        s["cart_id"] = j.get("cart_id")
        if not buys or not s["cart_id"]:
            s["outcome"] = "admitted_no_checkout"
            return
        key = uuid.uuid4().hex
        body = json.dumps(
            {
                "email": f"kundin{i}@bench.example",
                "shipping_address": _address(i),
                "payment_method": "invoice",
            }
        ).encode()
        for _attempt in range(5):
            status, _, data = await with_429(
                "checkout",
                "POST",
                f"/api/v1/carts/{s['cart_id']}/checkout",
                body,
                {"Idempotency-Key": key},
            )
            if status >= 500 or status == 0:
                await asyncio.sleep(1.0)  # same key: a retry cannot order twice
                continue
            break
        s["checkout_status"] = status
        s["checkout_done"] = time.time()
        s["outcome"] = "bought" if status == 201 else f"checkout_{status}"
        if status == 201:
            s["order"] = json.loads(data).get("number")

    # arrivals: the pre-queue evenly over [0, start_after), the rest over [start_after, arrival_seconds)
    n, pre = p["shoppers"], min(p["pre_queue"], p["shoppers"])
    times = []
    for k in range(pre):
        times.append((k + rng.random()) * p["start_after"] / max(1, pre))
    rest = n - pre
    span = max(0.0, p["arrival_seconds"] - p["start_after"])
    for k in range(rest):
        times.append(p["start_after"] + (k + rng.random()) * span / max(1, rest))
    share = p["checkout_share"]
    tasks = [
        asyncio.ensure_future(shopper(i, t0 + t, rng.random() < share)) for i, t in enumerate(times)
    ]
    done, pending = await asyncio.wait(tasks, timeout=max(1.0, hard_deadline + 15 - time.time()))
    for t in pending:
        t.cancel()
    rec["cancelled_shoppers"] = len(pending)
    for t in done:
        if t.exception() is not None:
            rec["errors"].append(
                {
                    "class": "client",
                    "status": -1,
                    "at": time.time(),
                    "path": "",
                    "body": repr(t.exception()),
                }
            )
    for c in conns:
        rec["reconnects"] += c.reconnects
        c.close()


def load_generator(conn, host, port):
    def new_record():
        return {
            "shoppers": [],
            "lat": {c: [] for c in CLASSES},
            "service": {c: [] for c in CLASSES},
            "status": {c: {} for c in CLASSES},
            "errors": [],
            "samples_4xx": [],
            "done_at": [],
            "retries_429": 0,
            "reconnects": 0,
            "cancelled_shoppers": 0,
        }

    async def run(phase, params, record):
        await _flash(host, port, params, record)

    serve_phases(conn, new_record, run)


# --- seeding (its own process, through the services) -------------------------------------------


def seed(units: int, starts_at: float, minutes: int, pace: int | None) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warenhaus.settings")
    import django

    django.setup()
    from datetime import datetime, timedelta

    from warenhaus.catalog.services import create_category, create_product
    from warenhaus.deals.services import create_deal

    cat = create_category(slug="bench", name="Lasttest", name_en="Load test")
    create_product(
        actor=None,
        title="Betriebssystem Vorbestellung",
        category=cat.slug,
        variants=[{"sku": "FLASH-OS", "price": "119.99", "on_hand": units + 10}],
        source="bench",
    )
    start = datetime.fromtimestamp(starts_at, tz=UTC)
    deal = create_deal(
        actor=None,
        sku="FLASH-OS",
        deal_price="49.97",
        units=units,
        starts_at=start,
        ends_at=start + timedelta(minutes=minutes),
        hold_minutes=10,
        admissions_per_minute=pace,
        source="bench",
    )
    return {
        "deal_id": deal.pk,
        "variant_id": deal.variant_id,
        "starts_at": deal.starts_at.timestamp(),
        "admissions_per_minute": deal.admissions_per_minute,
    }


# --- watching the database during the run -------------------------------------------------------


class DealWatcher(threading.Thread):
    """Reads the deal's counters every 100 ms: the peak of sold + held (+ released) against the
    contingent, and when everything was held / sold."""

    def __init__(self, db_url: str, deal_id: int):
        super().__init__(daemon=True)
        self.db_url, self.deal_id = db_url, deal_id
        self.stop = threading.Event()
        self.samples: list[tuple[float, int, int, int]] = []
        self.units = 0
        self.peak = 0
        self.over = 0
        self.error = None

    def run(self):
        import psycopg

        try:
            with psycopg.connect(self.db_url, autocommit=True) as conn:
                while not self.stop.is_set():
                    units, sold, held, rel = conn.execute(
                        "SELECT units, sold, held, released_units FROM deals_deal WHERE id = %s",
                        (self.deal_id,),
                    ).fetchone()
                    self.units = units
                    self.samples.append((time.time(), sold, held, rel))
                    used = sold + held + rel
                    self.peak = max(self.peak, used)
                    if used > units or sold > units:
                        self.over += 1
                    self.stop.wait(0.1)
        except Exception as err:  # noqa: BLE001  (reported, the run goes on)
            self.error = repr(err)


def redis_server_pids() -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == "redis-server":
                        out.append(int(entry))
            except OSError:
                pass
    return out


def pg_url(db_url: str) -> str:
    return re.sub(r"^postgres://", "postgresql://", db_url)


def db_facts(db_url: str, deal_id: int, variant_id: int, backend: str, prefix: str) -> dict:
    import psycopg

    with psycopg.connect(pg_url(db_url)) as conn:
        units, sold, held, rel, starts_at = conn.execute(
            "SELECT units, sold, held, released_units, extract(epoch from starts_at) FROM deals_deal WHERE id = %s",
            (deal_id,),
        ).fetchone()
        holds = conn.execute(
            "SELECT id, ticket, source, status, quantity, extract(epoch from created_at), cart_id FROM deals_hold WHERE deal_id = %s ORDER BY id",
            (deal_id,),
        ).fetchall()
        sales = conn.execute(
            "SELECT count(*), coalesce(sum(quantity), 0), extract(epoch from max(created_at)) FROM deals_sale WHERE deal_id = %s",
            (deal_id,),
        ).fetchone()
        on_hand, allocated = conn.execute(
            "SELECT on_hand, allocated FROM inventory_stock WHERE variant_id = %s", (variant_id,)
        ).fetchone()
        bad_stock = conn.execute(
            "SELECT count(*) FROM inventory_stock WHERE allocated > on_hand OR on_hand < 0 OR allocated < 0"
        ).fetchone()[0]
        orders, ordered_units = conn.execute(
            "SELECT count(DISTINCT order_id), coalesce(sum(quantity), 0) FROM orders_orderline WHERE variant_id = %s",
            (variant_id,),
        ).fetchone()
        over_limit = conn.execute(
            "SELECT count(*) FROM deals_householdusage WHERE deal_id = %s AND units > max_units",
            (deal_id,),
        ).fetchone()[0]
        dup_holds = conn.execute(
            "SELECT count(*) FROM (SELECT customer_key FROM deals_hold WHERE deal_id = %s GROUP BY customer_key HAVING count(*) > 1) x",
            (deal_id,),
        ).fetchone()[0]
        tickets = {}
        if backend == "db":
            for tid, key, joined in conn.execute(
                "SELECT id, order_key, joined_at FROM deals_ticket WHERE deal_id = %s", (deal_id,)
            ):
                tickets[tid] = (int(key), float(joined))
    if backend == "redis":
        import redis

        r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        ids = list(r.hvals(f"{prefix}:{{{deal_id}}}:who"))
        pipe = r.pipeline(transaction=False)
        for tid in ids:
            pipe.hmget(f"{prefix}:{{{deal_id}}}:t:{tid}", "order_key", "joined_at")
        for tid, (key, joined) in zip(ids, pipe.execute(), strict=True):
            if key is not None:
                tickets[tid] = (int(key), float(joined))
        r.close()
    return {
        "deal": {
            "units": units,
            "sold": sold,
            "held": held,
            "released_units": rel,
            "starts_at": float(starts_at),
        },
        "holds": [
            {
                "id": h[0],
                "ticket": h[1],
                "source": h[2],
                "status": h[3],
                "quantity": h[4],
                "created_at": float(h[5]),
                "cart_id": h[6],
            }
            for h in holds
        ],
        "sales": {
            "count": sales[0],
            "units": int(sales[1]),
            "last_at": float(sales[2]) if sales[2] is not None else None,
        },
        "stock": {"on_hand": on_hand, "allocated": allocated, "rows_oversold": bad_stock},
        "orders_with_deal_item": orders,
        "units_ordered": int(ordered_units),
        "households_over_limit": over_limit,
        "customers_with_two_holds": dup_holds,
        "tickets": tickets,
    }


# --- fairness -----------------------------------------------------------------------------------


def kendall_tau(xs: list[float]) -> float | None:
    """Kendall's tau-a between the sequence's index order and the values' order (1: the same order)."""
    n = len(xs)
    if n < 2:
        return None
    conc = disc = 0
    for a in range(n):
        xa = xs[a]
        for b in range(a + 1, n):
            if xs[b] > xa:
                conc += 1
            elif xs[b] < xa:
                disc += 1
    return (conc - disc) / (n * (n - 1) / 2)


def fairness(shoppers: list[dict], facts: dict) -> dict:
    by_ticket = {s["ticket"]: s for s in shoppers if s.get("ticket")}
    starts_at = facts["deal"]["starts_at"]
    queue_holds = [h for h in facts["holds"] if h["source"] == "queue"]
    admitted = [
        by_ticket[h["ticket"]] for h in queue_holds if h["ticket"] in by_ticket
    ]  # in admission order
    admitted_ids = {s["i"] for s in admitted}
    tickets = facts["tickets"]

    def is_pre(s):
        t = tickets.get(s.get("ticket"))
        return t[0] < PRE_QUEUE_SPAN if t else s["join_done"] < starts_at

    pre_adm = [s for s in admitted if is_pre(s)]
    post_adm = [s for s in admitted if not is_pre(s)]
    joined = [s for s in shoppers if s.get("ticket")]
    pre_all = [s for s in joined if is_pre(s)]
    post_all = sorted((s for s in joined if not is_pre(s)), key=lambda s: s["join_sent"])

    out: dict = {
        "admitted": len(admitted),
        "pre_queue": {"joined": len(pre_all), "admitted": len(pre_adm)},
        "after_start": {"joined": len(post_all), "admitted": len(post_adm)},
    }
    # pre-queue: admission order against arrival order should be a shuffle (tau ~ 0)
    if len(pre_adm) >= 2:
        tau = kendall_tau([s["join_sent"] for s in pre_adm])
        n = len(pre_adm)
        sd = math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))
        out["pre_queue"].update(
            {
                "kendall_tau_arrival_vs_admission": round(tau, 3),
                "z": round(tau / sd, 2),
                "shuffled": abs(tau / sd) < 3,
                "note": "tau ~ 0 (|z| < 3): admission order independent of arrival order",
            }
        )
    # after the start: first come, first served
    if post_adm:
        arrival_rank = {s["i"]: r for r, s in enumerate(post_all)}
        ranks = [arrival_rank[s["i"]] for s in post_adm]
        out["after_start"]["kendall_tau_arrival_vs_admission"] = (
            round(kendall_tau(ranks), 4) if len(ranks) >= 2 else None
        )
        out["after_start"]["mean_abs_displacement_places"] = round(
            sum(abs(r - k) for k, r in enumerate(ranks)) / len(ranks), 2
        )
        out["after_start"]["max_displacement_places"] = max(abs(r - k) for k, r in enumerate(ranks))
        # someone who arrived after the start but was not admitted, while someone who arrived
        # later was: overtaken (with 100 ms slack for requests in flight at the same time)
        last_admitted_sent = max(s["join_sent"] for s in post_adm)
        overtaken = [
            s
            for s in post_all
            if s["i"] not in admitted_ids and s["join_sent"] < last_admitted_sent
        ]
        out["after_start"]["overtaken"] = len(overtaken)
        out["after_start"]["overtaken_by_more_than_100ms"] = sum(
            1 for s in overtaken if s["join_sent"] < last_admitted_sent - 0.1
        )
        # the server's own order keys (join time on the server) against the client's arrival order
        keyed = [tickets[s["ticket"]][0] for s in post_all if s["ticket"] in tickets]
        inversions = sum(1 for a, b in zip(keyed, keyed[1:], strict=False) if b < a)
        out["after_start"]["server_order_adjacent_inversions"] = inversions
    return out


# --- one run --------------------------------------------------------------------------------------


def run_backend(backend: str, args, base: str, out_dir: Path) -> dict:
    db_url = f"{base}/{args.db}"
    prefix = f"bench-flash-{uuid.uuid4().hex[:10]}"
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": db_url,
            "DJANGO_SETTINGS_MODULE": "warenhaus.settings",
            "DB_CONN_MAX_AGE": "600",
            "WARENHAUS_VAR": str(out_dir / "var"),
            "WAITING_ROOM_BACKEND": backend,
            "REDIS_URL": REDIS_URL,
            "WAITING_ROOM_PREFIX": prefix,
            "EMAIL_URL": "locmem://",
            "LOG_LEVEL": "WARNING",
        }
    )
    if args.admissions_per_minute:
        env["DEAL_ADMISSIONS_PER_MINUTE"] = str(args.admissions_per_minute)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT / "src"), env.get("PYTHONPATH", "")])
    )
    print(f"\n=== back end {backend}: database {args.db} (fresh), prefix {prefix}", flush=True)
    recreate_database(base, args.db)
    subprocess.run([*warenhaus_cmd(), "migrate", "-v", "0"], env=env, check=True, cwd=str(ROOT))

    port = free_port()
    log_path = out_dir / f"gunicorn-flash-{backend}.log"
    access_log = out_dir / f"access-flash-{backend}.log"
    access_log.unlink(missing_ok=True)
    server = start_server(
        env,
        port,
        log_path,
        args.workers,
        args.threads,
        access_log=str(access_log) if args.access_log else "",
        access_format=ACCESS_FORMAT,
    )
    worker_log = open(out_dir / f"worker-flash-{backend}.log", "wb")
    worker = subprocess.Popen(
        [*warenhaus_cmd(), "worker", "--deals-interval", str(args.deals_interval)],
        env=env,
        cwd=str(ROOT),
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    print(
        f"bench: gunicorn {args.workers} x {args.threads} on 127.0.0.1:{port}; worker pid {worker.pid} (sweep every {args.deals_interval:g} s)",
        flush=True,
    )

    try:
        return _run_with_server(
            backend,
            args,
            base,
            out_dir,
            env,
            db_url,
            prefix,
            server,
            worker,
            worker_log,
            port,
            log_path,
            access_log,
        )
    finally:
        _stop_worker(worker)
        worker_log.close()
        stop_server(server)


def _stop_worker(worker) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def _run_with_server(
    backend,
    args,
    base,
    out_dir,
    env,
    db_url,
    prefix,
    server,
    worker,
    worker_log,
    port,
    log_path,
    access_log,
) -> dict:
    # the deal's start is fixed when it is made; the first shopper arrives --start-after seconds
    # before it. On a busy machine the seed process may take a while: plan generously.
    t0 = time.time() + args.lead
    starts_at = t0 + args.start_after
    seed_out = subprocess.run(
        [
            sys.executable,
            __file__,
            "_seed",
            str(args.units),
            repr(starts_at),
            "60",
            str(args.admissions_per_minute or 0),
        ],
        env=env,
        check=True,
        cwd=str(ROOT),
        capture_output=True,
        text=True,
    )
    seeded = json.loads(seed_out.stdout.strip().splitlines()[-1])
    if time.time() > t0 - 1:
        raise SystemExit(
            f"seeding took too long for the planned start; raise --lead (now {args.lead:g} s)"
        )
    print(
        f"bench: deal {seeded['deal_id']} with {args.units} units starts at +{args.start_after:g} s; pace {seeded['admissions_per_minute']}/min",
        flush=True,
    )

    sampler = Sampler(server.pid)
    sampler.start()
    watcher = DealWatcher(pg_url(db_url), seeded["deal_id"])
    watcher.start()
    parent_conn, child_conn = mp.get_context("spawn").Pipe()
    gen = mp.get_context("spawn").Process(
        target=load_generator, args=(child_conn, "127.0.0.1", port), daemon=True
    )
    gen.start()
    meters = {
        "server": CpuMeter(lambda: process_tree(server.pid)),
        "worker": CpuMeter(lambda: process_tree(worker.pid)),
        "postgres": CpuMeter(lambda: postgres_pids(args.db)),
        "redis": CpuMeter(redis_server_pids),
    }
    params = {
        "deal_id": seeded["deal_id"],
        "t0": t0,
        "shoppers": args.shoppers,
        "pre_queue": args.pre_queue,
        "start_after": args.start_after,
        "arrival_seconds": args.arrival_seconds,
        "poll_interval": args.poll_interval,
        "poll_timeout": args.poll_timeout,
        "checkout_share": args.checkout_share,
        "connections": args.connections,
        "max_seconds": args.max_seconds,
        "seed": args.seed,
    }
    profiler = None
    try:
        for m in meters.values():
            m.start()
        busy0 = machine_busy_seconds()
        parent_conn.send(("flash", params))
        if args.profile:
            time.sleep(max(0.0, starts_at - time.time() + args.profile_offset))
            profile_path = out_dir / f"flash-profile-{backend}.txt"
            profiler = subprocess.Popen(
                ["py-spy", "record", "--pid", str(server.pid), "--subprocesses", "--duration", str(int(args.profile)), "--rate", "200",
                 "--format", "raw", "--output", str(profile_path), "--nonblocking", *([] if args.profile_wall else ["--gil"])],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        rec = parent_conn.recv()
        cpu = {k: m.stop() for k, m in meters.items()}
        busy1 = machine_busy_seconds()
        parent_conn.send(None)
        gen.join(10)
        if profiler is not None:
            profiler.wait(timeout=120)
    finally:
        watcher.stop.set()
        watcher.join(5)
        sampler.stop.set()
        sampler.join()
        _stop_worker(worker)
        stop_server(server)

    facts = db_facts(db_url, seeded["deal_id"], seeded["variant_id"], backend, prefix)
    if backend == "redis":
        _clear_redis(prefix)
    if not args.keep_db:
        drop_database(base, args.db)
    return summarise(
        backend,
        args,
        rec,
        facts,
        watcher,
        sampler,
        cpu,
        busy1 - busy0,
        t0,
        starts_at,
        log_path,
        access_log,
        prefix,
    )


def _clear_redis(prefix: str) -> None:
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    keys = list(r.scan_iter(match=f"{prefix}:*", count=1000))
    for k in range(0, len(keys), 500):
        r.unlink(*keys[k : k + 500])
    r.close()


def _rate_window(stamps: list[float]) -> dict:
    if not stamps:
        return {"n": 0}
    stamps = sorted(stamps)
    wall = max(1e-9, stamps[-1] - stamps[0])
    buckets: dict[int, int] = {}
    for t in stamps:
        buckets[int(t)] = buckets.get(int(t), 0) + 1
    return {
        "n": len(stamps),
        "window_s": round(wall, 2),
        "per_s": round(len(stamps) / wall, 1),
        "busiest_second": max(buckets.values()),
    }


def summarise(
    backend,
    args,
    rec,
    facts,
    watcher,
    sampler,
    cpu,
    busy,
    t0,
    starts_at,
    log_path,
    access_log,
    prefix,
) -> dict:
    shoppers = rec["shoppers"]
    # from the first arrival to the last answer (the generator's own wall time includes the lead)
    gen_wall = rec["wall_s"]
    wall = max(1e-3, max((t for t, _c, _s in rec["done_at"]), default=t0 + 1) - t0)
    status = rec["status"]
    total = {
        k: sum(status[c].get(k, 0) for c in CLASSES)
        for k in ("2xx", "4xx", "429", "5xx", "conn_error")
    }
    n_req = sum(sum(v.values()) for v in status.values())
    outcomes: dict[str, int] = {}
    for s in shoppers:
        o = s.get("outcome", "unfinished")
        outcomes[o] = outcomes.get(o, 0) + 1
    joins_ok = [s["join_done"] for s in shoppers if s.get("join_status") == 201]
    lateness = sorted(s["join_sent"] - s["scheduled"] for s in shoppers if "join_sent" in s)
    d = facts["deal"]
    queue_holds = [h for h in facts["holds"] if h["source"] == "queue"]
    hold_times = [h["created_at"] for h in queue_holds]
    all_held_at = next((t for t, so, he, rl in watcher.samples if so + he + rl >= d["units"]), None)
    sold_out_at = next((t for t, so, he, rl in watcher.samples if so >= d["units"] - rl), None)
    if sold_out_at is None and facts["sales"]["units"] >= d["units"]:
        sold_out_at = facts["sales"]["last_at"]
    by_ticket = {s["ticket"]: s for s in shoppers if s.get("ticket")}
    seen_delay = [
        by_ticket[h["ticket"]]["admitted_seen"] - h["created_at"]
        for h in queue_holds
        if "admitted_seen" in by_ticket.get(h["ticket"], {})
    ]
    oversell = {
        "deal_sold_over_units": max(0, d["sold"] - d["units"]),
        "sampled_used_over_units": watcher.over,
        "peak_sold_plus_held": watcher.peak,
        "sales_vs_deal_sold": facts["sales"]["units"] - d["sold"],
        "ordered_units_vs_sold": facts["units_ordered"] - d["sold"],
        "stock_rows_oversold": facts["stock"]["rows_oversold"],
        "households_over_limit": facts["households_over_limit"],
        "customers_with_two_holds": facts["customers_with_two_holds"],
        "holds_not_matching_counters": (
            sum(h["quantity"] for h in facts["holds"] if h["status"] == "active") - d["held"]
        )
        + (sum(h["quantity"] for h in facts["holds"] if h["status"] == "converted") - d["sold"]),
    }
    oversell_count = (
        oversell["deal_sold_over_units"]
        + oversell["sampled_used_over_units"]
        + abs(oversell["sales_vs_deal_sold"])
        + abs(oversell["ordered_units_vs_sold"])
        + oversell["stock_rows_oversold"]
        + oversell["households_over_limit"]
        + oversell["customers_with_two_holds"]
        + abs(oversell["holds_not_matching_counters"])
    )
    server_times: dict[str, list[float]] = {c: [] for c in CLASSES}
    if access_log.exists():
        for line in access_log.read_text().splitlines():
            kind, st, micros = (line.split() + ["", "", ""])[:3]
            if kind in server_times and st.startswith("2"):
                server_times[kind].append(int(micros) / 1e6)
    log_lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    error_log = [
        ln for ln in log_lines if re.search(r"ERROR|Traceback|Error:|CRITICAL|WORKER TIMEOUT", ln)
    ][:60]
    join_win = _rate_window(joins_ok)
    poll = lat(rec["lat"]["poll"])
    join = lat(rec["lat"]["join"])
    r = {
        "backend": backend,
        "prefix": prefix,
        "wall_s": round(wall, 1),
        "requests": {
            "total": n_req,
            **total,
            "per_class": status,
            "retries_429": rec["retries_429"],
            "reconnects": rec["reconnects"],
            "requests_per_s": round(n_req / wall, 1),
        },
        "shoppers": {
            "n": len(shoppers),
            "outcomes": outcomes,
            "cancelled_at_deadline": rec["cancelled_shoppers"],
        },
        "join": {
            "latency": join,
            "with_429_retries": lat(
                [s["join_done"] - s["join_sent"] for s in shoppers if s.get("join_status") == 201]
            ),
            "service_time": lat(rec["service"]["join"]),
            "server_time": lat(server_times["join"]),
            **join_win,
            "offered_per_s": round(args.shoppers / args.arrival_seconds, 1),
            "start_lateness_p50_ms": round(lateness[len(lateness) // 2] * 1000, 1)
            if lateness
            else None,
            "start_lateness_max_ms": round(lateness[-1] * 1000, 1) if lateness else None,
        },
        "poll": {
            "latency": poll,
            "service_time": lat(rec["service"]["poll"]),
            "server_time": lat(server_times["poll"]),
            "polls_per_shopper_mean": round(
                sum(s.get("polls", 0) for s in shoppers) / max(1, len(shoppers)), 1
            ),
        },
        "checkout": {
            "latency": lat(rec["lat"]["checkout"]),
            "service_time": lat(rec["service"]["checkout"]),
            "server_time": lat(server_times["checkout"]),
        },
        "admissions": {
            "queue_holds": len(queue_holds),
            "first_after_start_s": round(min(hold_times) - starts_at, 2) if hold_times else None,
            "all_admitted_after_start_s": round(max(hold_times) - starts_at, 2)
            if hold_times
            else None,
            "per_s": round(len(hold_times) / max(1e-3, max(hold_times) - min(hold_times)), 1)
            if len(hold_times) > 1
            else None,
            # one admit_due call stamps all its holds with the same time: the batches it admitted
            "admitting_calls": len({h["created_at"] for h in queue_holds}),
            "largest_batch": max(Counter(h["created_at"] for h in queue_holds).values(), default=0),
            "seen_by_shopper_after_p50_ms": round(sorted(seen_delay)[len(seen_delay) // 2] * 1000)
            if seen_delay
            else None,
        },
        "sold_out": {
            "all_units_held_after_start_s": round(all_held_at - starts_at, 2)
            if all_held_at
            else None,
            "all_units_sold_after_start_s": round(sold_out_at - starts_at, 2)
            if sold_out_at
            else None,
        },
        "fairness": fairness(shoppers, facts),
        "database": {k: v for k, v in facts.items() if k not in ("holds", "tickets")}
        | {"tickets": len(facts["tickets"]), "holds": len(facts["holds"])},
        "oversell": oversell | {"total": oversell_count},
        "cpu_s": {k: round(v, 2) for k, v in cpu.items()}
        | {"load_generator": round(rec["client_cpu_s"], 2), "whole_machine": round(busy, 2)},
        # over the generator's whole run (the meters' window: lead included)
        "cpu_cores_busy": {k: round(v / gen_wall, 2) for k, v in cpu.items()}
        | {
            "load_generator": round(rec["client_cpu_s"] / gen_wall, 2),
            "whole_machine": round(busy / gen_wall, 2),
            "other_processes": round(
                max(0.0, busy - sum(cpu.values()) - rec["client_cpu_s"]) / gen_wall, 2
            ),
        },
        "server_cpu_ms_per_request": round(cpu["server"] / max(1, n_req) * 1000, 2),
        "memory": {
            "server_rss_peak_mb": round(sampler.peak / 2**20, 1),
            "server_rss_end_mb": round(sampler.last / 2**20, 1),
        },
        "errors": rec["errors"][:30],
        "error_count": len(rec["errors"]),
        "samples_4xx": rec["samples_4xx"][:10],
        "server_log_errors": error_log,
        "watcher_error": watcher.error,
    }
    r["targets"] = {
        "no_5xx": {"value": total["5xx"], "met": total["5xx"] == 0},
        "no_oversell": {"value": oversell_count, "met": oversell_count == 0},
        "join_per_s": {
            "value": join_win.get("per_s"),
            "met": (join_win.get("per_s") or 0) >= TARGETS["join_per_s"],
        },
        "poll_p99_ms": {
            "value": poll["p99_ms"],
            "met": poll["n"] > 0 and poll["p99_ms"] < TARGETS["poll_p99_ms"],
        },
    }
    return r


def print_report(r: dict) -> None:
    q = r["requests"]
    print(
        f"\n--- {r['backend']}: {r['shoppers']['n']} shoppers, {r['wall_s']} s, {q['total']} requests ({q['requests_per_s']}/s)"
    )
    print(
        f"  status          2xx {q['2xx']}, 4xx {q['4xx']}, 429 {q['429']}, 5xx {q['5xx']}, connection errors {q['conn_error']} (429 retries {q['retries_429']}, reconnects {q['reconnects']})"
    )
    print("  per class       " + "; ".join(f"{c}: {v}" for c, v in q["per_class"].items()))
    print(f"  outcomes        {r['shoppers']['outcomes']}")
    print(f"  {'latency (ms)':26} {'n':>6} {'p50':>8} {'p99':>8} {'max':>8}   server p50/p99")
    for c in CLASSES:
        lt, st = r[c]["latency"], r[c]["server_time"]
        print(
            f"  {c:26} {lt['n']:6} {lt['p50_ms']:8.1f} {lt['p99_ms']:8.1f} {lt['max_ms'] or 0:8.1f}   {st['p50_ms']:.1f} / {st['p99_ms']:.1f}"
        )
    j = r["join"]
    w = j["with_429_retries"]
    print(
        f"  join incl. 429 retries  p50 {w['p50_ms']:.1f} p99 {w['p99_ms']:.1f} max {w['max_ms'] or 0:.1f} ms"
    )
    print(
        f"  joins           {j.get('per_s')}/s over {j.get('window_s')} s (busiest second {j.get('busiest_second')}; offered {j['offered_per_s']}/s; late start p50 {j['start_lateness_p50_ms']} ms, max {j['start_lateness_max_ms']} ms)"
    )
    a, so = r["admissions"], r["sold_out"]
    print(
        f"  admissions      {a['queue_holds']} holds in {a['admitting_calls']} admitting calls (largest {a['largest_batch']}), {a['per_s']}/s, first +{a['first_after_start_s']} s, last +{a['all_admitted_after_start_s']} s after the start; seen by the shopper after p50 {a['seen_by_shopper_after_p50_ms']} ms"
    )
    print(
        f"  sold out        all units held +{so['all_units_held_after_start_s']} s, all sold +{so['all_units_sold_after_start_s']} s after the start"
    )
    f = r["fairness"]
    print(f"  fairness        pre-queue {f['pre_queue']}")
    print(f"                  after start {f['after_start']}")
    o = r["oversell"]
    print(
        f"  oversell        {o['total']} ({', '.join(f'{k} {v}' for k, v in o.items() if k != 'total')})"
    )
    db = r["database"]
    print(
        f"  database        deal {db['deal']}, sales {db['sales']['count']}, orders {db['orders_with_deal_item']}, stock {db['stock']}"
    )
    print(f"  CPU s           {r['cpu_s']}  (server {r['server_cpu_ms_per_request']} ms/request)")
    print(f"  cores busy      {r['cpu_cores_busy']}")
    print(f"  memory          {r['memory']}")
    if r["errors"]:
        print(f"  errors ({r['error_count']}), e.g. {r['errors'][:3]}")
    if r["server_log_errors"]:
        print("  server log:\n    " + "\n    ".join(r["server_log_errors"][:15]))
    print(
        "  targets         "
        + ", ".join(
            f"{k} {t['value']} {'OK' if t['met'] else 'MISSED'}" for k, t in r["targets"].items()
        )
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--backends",
        default="db,redis",
        help="waiting-room back ends to run, in order (default db,redis)",
    )
    ap.add_argument("--shoppers", type=int, default=5000)
    ap.add_argument("--units", type=int, default=500)
    ap.add_argument(
        "--arrival-seconds",
        type=float,
        default=10.0,
        help="all shoppers arrive within this time (default 10)",
    )
    ap.add_argument(
        "--start-after",
        type=float,
        default=3.0,
        help="the deal starts this many seconds after the first arrival (default 3)",
    )
    ap.add_argument(
        "--pre-queue",
        type=int,
        default=None,
        help="shoppers arriving before the start (default 40 %% of the units, so that the later arrivals get units too)",
    )
    ap.add_argument("--poll-interval", type=float, default=1.0)
    ap.add_argument(
        "--poll-timeout",
        type=float,
        default=60.0,
        help="a shopper stops polling after this many seconds (default 60)",
    )
    ap.add_argument(
        "--checkout-share",
        type=float,
        default=1.0,
        help="share of admitted shoppers who check out (default 1)",
    )
    ap.add_argument(
        "--connections",
        type=int,
        default=64,
        help="keep-alive connections shared by all shoppers (default 64)",
    )
    ap.add_argument(
        "--max-seconds",
        type=float,
        default=120.0,
        help="the load ends this long after the first arrival at the latest (default 120)",
    )
    ap.add_argument(
        "--admissions-per-minute",
        type=int,
        default=0,
        help="the deal's pace (default: the shop's DEAL_ADMISSIONS_PER_MINUTE)",
    )
    ap.add_argument(
        "--lead",
        type=float,
        default=30.0,
        help="seconds between making the deal and the first arrival (seed process, load generator start-up; default 30)",
    )
    ap.add_argument(
        "--deals-interval", type=float, default=1.0, help="the worker's sweep interval (default 1)"
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() + 1)),
        help="gunicorn workers (default as in production, cores + 1)",
    )
    ap.add_argument("--threads", type=int, default=int(os.environ.get("WEB_THREADS", 4)))
    ap.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="no access log (then no server-side times per class)",
    )
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument(
        "--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    )
    ap.add_argument("--db", default="wh_bench_flash")
    ap.add_argument("--keep-db", action="store_true")
    ap.add_argument(
        "--profile",
        metavar="SECONDS",
        type=float,
        default=0,
        help="py-spy on all workers for this many seconds from the deal's start (py-spy on PATH)",
    )
    ap.add_argument(
        "--profile-offset",
        type=float,
        default=0.0,
        help="start the profile this many seconds after the deal's start",
    )
    ap.add_argument("--profile-wall", action="store_true")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    if args.pre_queue is None:
        args.pre_queue = max(1, int(args.units * 0.4))
    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    base = args.pg_url.rstrip("/")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=str(ROOT), capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src"], cwd=str(ROOT), capture_output=True, text=True
    ).stdout.strip()
    results = {
        "config": vars(args)
        | {
            "python": sys.version.split()[0],
            "cores": os.cpu_count(),
            "commit": commit,
            "src_dirty": bool(dirty),
        },
        "runs": {},
    }
    print(f"bench: code at {commit}{' (src has uncommitted changes)' if dirty else ''}", flush=True)
    failed = False
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        r = run_backend(backend, args, base, out_dir)
        results["runs"][backend] = r
        print_report(r)
        failed |= not (r["targets"]["no_5xx"]["met"] and r["targets"]["no_oversell"]["met"])
    text = json.dumps(results, indent=2, default=str)
    if args.json:
        Path(args.json).write_text(text)
    (out_dir / f"flash-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(text)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_seed":
        pace = int(sys.argv[5]) or None
        print(json.dumps(seed(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), pace)))
        sys.exit(0)
    sys.exit(main())
