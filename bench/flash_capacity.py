"""How many queue joins and ticket polls per second the production server can take at all.

    .venv/bin/python bench/flash_capacity.py [--backends db,redis] [--requests 3000] [--clients 32]

``bench/flash_sale.py`` replays a rush (arrivals on a schedule, polls, checkouts, 429 retries):
what a shopper sees. This measures the ceiling underneath, closed loop: ``--clients`` keep-alive
connections send requests back to back, each the moment its previous answer came, so the
server is always busy. For each waiting-room back end:

1. drops and creates the PostgreSQL database ``--db`` and migrates it; starts gunicorn with the
   production configuration (``cores + 1`` workers x 4 threads) and the worker (the admitter's
   heartbeat: joins and polls then only read, as in a real rush);
2. seeds a live deal (its start a second ago) with more people let in per minute than will join
   but only 5 units, so the line stays long;
3. sends, in this order: ``--requests`` ``GET /api/v1/health`` (the framework's floor: no
   database), ``--requests`` joins (``POST /api/v1/deals/{id}/queue``, each a new e-mail
   address), ``--requests`` joins of a sold-out deal (each answered "sold out" with a new
   wait-list place, as 90 % of a rush's shoppers are), ``--requests`` polls of waiting tickets (500 different ones, round robin);
4. reports requests per second and latency p50/p99 per kind, and the CPU seconds of the server,
   PostgreSQL and Redis per request.

First of all (``--no-floor`` skips it), the floor: the same gunicorn settings serving
``bench/floor_app.py``, a constant answer, ``--requests`` times: what a request costs before any
of the shop's code runs.

The load generator is a separate process (the asyncio client of ``bench/checkout.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from checkout import (  # noqa: E402
    cpu_seconds,
    free_port,
    postgres_pids,
    process_tree,
    recreate_database,
    run_requests,
    start_server,
    stop_server,
    warenhaus_cmd,
)
from flash_sale import REDIS_URL, redis_server_pids  # noqa: E402

_SEED = """
import json
from datetime import datetime, timedelta, timezone
import django
django.setup()
from warenhaus.catalog.services import create_category, create_product
from warenhaus.deals.services import create_deal
cat = create_category(slug="bench", name="Lasttest", name_en="Load test")
create_product(actor=None, title="Betriebssystem Vorbestellung", category=cat.slug, variants=[{"sku": "FLASH-OS", "price": "119.99", "on_hand": 50}], source="bench")
start = datetime.now(timezone.utc) - timedelta(seconds=1)
deal = create_deal(actor=None, sku="FLASH-OS", deal_price="49.97", units=5, starts_at=start, ends_at=start + timedelta(hours=1),
                   admissions_per_minute=1, source="bench")
from warenhaus.deals.models import Deal
gone = create_deal(actor=None, sku="FLASH-OS", deal_price="49.97", units=5, starts_at=start, ends_at=start + timedelta(hours=1),
                   admissions_per_minute=1, source="bench")
Deal.objects.filter(pk=gone.pk).update(sold=5)  # every unit sold: a join gets "sold out" and a wait-list place
print(json.dumps({"deal": deal.pk, "sold_out": gone.pk}))
"""


def _phase(conn, host, port):
    """The load generator (its own process): runs the phases it is sent, answers the records."""
    while True:
        job = conn.recv()
        if job is None:
            return
        record = {"lat": [], "errors": [], "reconnects": 0}
        t0 = time.perf_counter()
        asyncio.run(
            run_requests(
                host, port, clients=job["clients"], requests=job["requests"], record=record
            )
        )
        record["wall"] = time.perf_counter() - t0
        conn.send(record)


def _quantiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    v = sorted(values)
    return {
        "n": len(v),
        "p50_ms": round(v[len(v) // 2] * 1000, 1),
        "p99_ms": round(v[min(len(v) - 1, int(len(v) * 0.99))] * 1000, 1),
    }


def run_backend(backend: str, args) -> dict:
    db_url = f"{args.pg_url}/{args.db}"
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": db_url,
            "DJANGO_SETTINGS_MODULE": "warenhaus.settings",
            "DB_CONN_MAX_AGE": "600",
            "WAITING_ROOM_BACKEND": backend,
            "WAITING_ROOM_REDIS_URL": REDIS_URL,
            "WAITING_ROOM_PREFIX": f"bench-cap-{uuid.uuid4().hex[:10]}",
            "EMAIL_URL": "locmem://",
            "LOG_LEVEL": "WARNING",
            "WARENHAUS_VAR": str(ROOT / "var" / "bench" / "var"),
        }
    )
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT / "src"), env.get("PYTHONPATH", "")])
    )
    recreate_database(args.pg_url, args.db)
    subprocess.run([*warenhaus_cmd(), "migrate", "-v", "0"], env=env, check=True, cwd=str(ROOT))
    seeded = json.loads(
        subprocess.run(
            [sys.executable, "-c", _SEED],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            cwd=str(ROOT),
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    deal, gone = seeded["deal"], seeded["sold_out"]
    port = free_port()
    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    server = start_server(
        env, port, out_dir / f"gunicorn-capacity-{backend}.log", args.workers, args.threads
    )
    worker = subprocess.Popen(
        [*warenhaus_cmd(), "worker", "--deals-interval", "1"],
        env=env,
        cwd=str(ROOT),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    parent, child = mp.Pipe()
    gen = mp.Process(target=_phase, args=(child, "127.0.0.1", port), daemon=True)
    gen.start()
    out = {"backend": backend, "deal": deal}
    try:
        time.sleep(2.5)  # the admitter's first heartbeat
        n = args.requests
        joins = [
            (
                "POST",
                f"/api/v1/deals/{deal}/queue",
                json.dumps({"email": f"kapazitaet{i}@bench.example"}),
                None,
                201,
            )
            for i in range(n)
        ]
        sold_out = [
            (
                "POST",
                f"/api/v1/deals/{gone}/queue",
                json.dumps({"email": f"zu-spaet{i}@bench.example"}),
                None,
                201,
            )
            for i in range(n)
        ]
        phases = [
            ("health", [("GET", "/api/v1/health", None, None, 200)] * n),
            ("join", joins),
            ("sold_out", sold_out),
        ]
        for kind, requests in phases + [("poll", None)]:
            if kind == "poll":
                import psycopg

                if backend == "redis":
                    import redis

                    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
                    ids = client.zrange(f"{env['WAITING_ROOM_PREFIX']}:{{{deal}}}:line", 0, 499)
                    client.close()
                else:
                    with psycopg.connect(db_url.replace("postgres://", "postgresql://", 1)) as pg:
                        ids = [
                            r[0]
                            for r in pg.execute(
                                "SELECT id FROM deals_ticket WHERE deal_id = %s AND state = 'waiting' LIMIT 500",
                                (deal,),
                            )
                        ]
                requests = [
                    ("GET", f"/api/v1/deals/{deal}/queue/{ids[i % len(ids)]}", None, None, 200)
                    for i in range(n)
                ]
            pids = process_tree(server.pid)
            pg_pids, redis_pids = postgres_pids(args.db), redis_server_pids()
            before = (cpu_seconds(pids), cpu_seconds(pg_pids), cpu_seconds(redis_pids))
            profiler = None
            if args.profile == kind:
                profiler = subprocess.Popen(
                    ["py-spy", "record", "--pid", str(server.pid), "--subprocesses", "--rate", "250", "--format", "raw",
                     "--output", str(out_dir / f"capacity-profile-{backend}-{kind}.txt"), "--nonblocking", "--gil"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            parent.send({"clients": args.clients, "requests": requests})
            rec = parent.recv()
            if profiler is not None:
                profiler.send_signal(2)  # py-spy writes its samples on SIGINT
                profiler.wait(timeout=60)
            after = (
                cpu_seconds(process_tree(server.pid)),
                cpu_seconds(pg_pids),
                cpu_seconds(redis_pids),
            )
            ok = len(rec["lat"])
            out[kind] = {
                "ok": ok,
                "errors": len(rec["errors"]),
                "error_samples": [list(map(str, e))[:3] for e in rec["errors"][:3]],
                "per_s": round(ok / rec["wall"], 1),
                "latency": _quantiles(rec["lat"]),
                "cpu_ms_per_request": {
                    k: round((a - b) * 1000 / max(1, n), 2)
                    for k, a, b in zip(("server", "postgres", "redis"), after, before, strict=True)
                },
            }
            print(
                f"  {backend:5} {kind:6} {out[kind]['per_s']:7.1f}/s  p50 {out[kind]['latency'].get('p50_ms')} ms  p99 {out[kind]['latency'].get('p99_ms')} ms  "
                f"errors {out[kind]['errors']}  CPU ms/request {out[kind]['cpu_ms_per_request']}",
                flush=True,
            )
    finally:
        parent.send(None)
        gen.join(timeout=10)
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
        stop_server(server)
    return out


def run_floor(args) -> dict:
    """gunicorn with the production settings serving bench/floor_app.py (a constant answer):
    the least a request costs here before any of the shop's code."""
    env = dict(os.environ)
    port = free_port()
    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    server = start_server(
        env,
        port,
        out_dir / "gunicorn-capacity-floor.log",
        args.workers,
        args.threads,
        app="floor_app:app",
    )
    parent, child = mp.Pipe()
    gen = mp.Process(target=_phase, args=(child, "127.0.0.1", port), daemon=True)
    gen.start()
    try:
        n = args.requests
        before = cpu_seconds(process_tree(server.pid))
        parent.send({"clients": args.clients, "requests": [("GET", "/", None, None, 200)] * n})
        rec = parent.recv()
        used = cpu_seconds(process_tree(server.pid)) - before
    finally:
        parent.send(None)
        gen.join(timeout=10)
        stop_server(server)
    ok = len(rec["lat"])
    out = {
        "ok": ok,
        "errors": len(rec["errors"]),
        "per_s": round(ok / rec["wall"], 1),
        "latency": _quantiles(rec["lat"]),
        "cpu_ms_per_request": {"server": round(used * 1000 / max(1, n), 2)},
    }
    print(
        f"  floor        {out['per_s']:7.1f}/s  p50 {out['latency'].get('p50_ms')} ms  p99 {out['latency'].get('p99_ms')} ms  "
        f"errors {out['errors']}  CPU ms/request {out['cpu_ms_per_request']}  (gunicorn, a constant answer)",
        flush=True,
    )
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default="db,redis")
    ap.add_argument("--requests", type=int, default=3000, help="requests per kind (default 3000)")
    ap.add_argument(
        "--clients",
        type=int,
        default=32,
        help="keep-alive connections sending back to back (default 32)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY", (os.cpu_count() or 1) + 1)),
    )
    ap.add_argument("--threads", type=int, default=int(os.environ.get("WEB_THREADS", 4)))
    ap.add_argument(
        "--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    )
    ap.add_argument("--db", default="wh_bench_capacity")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip the floor: gunicorn serving a constant answer (bench/floor_app.py)",
    )
    ap.add_argument(
        "--profile",
        choices=("health", "join", "sold_out", "poll"),
        help="py-spy (on PATH) on all workers during this kind's phase (GIL samples, raw format in var/bench)",
    )
    args = ap.parse_args(argv)
    print(
        f"bench: closed loop, {args.clients} connections, {args.requests} requests per kind, gunicorn {args.workers} x {args.threads}",
        flush=True,
    )
    floor = run_floor(args) if args.floor else None
    results = [run_backend(b.strip(), args) for b in args.backends.split(",") if b.strip()]
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps({"config": vars(args), "floor": floor, "runs": results}, indent=2)
        )
    return (
        0
        if all(
            r.get(k, {}).get("ok") for r in results for k in ("health", "join", "sold_out", "poll")
        )
        else 1
    )


if __name__ == "__main__":
    sys.exit(main())
