"""Checkout throughput and latency against the production server (gunicorn + PostgreSQL).

    .venv/bin/python bench/checkout.py [--orders 2000] [--clients 32] [--workers 5] [--threads 4]

What it does, in order:

1. drops and creates a PostgreSQL database for the bench (``--db``, default ``warenhaus_bench``),
   migrates it with ``warenhaus migrate`` and seeds ``--variants`` products with enough stock for
   every order (through the catalog services);
2. starts gunicorn with the shop's production configuration (``warenhaus.gunicorn_conf``; only
   the access log is off) on a free port;
3. in a separate load-generator process, ``--clients`` concurrent keep-alive HTTP/1.1
   connections (asyncio, a minimal client so the client's own CPU stays small, and measured) each
   run create cart -> add line -> checkout (with an ``Idempotency-Key``) until ``--orders``
   orders are placed; then the same clients hit ``GET /api/v1/health`` (no database) as often,
   to show what the framework costs by itself on the same server under the same load;
4. checks the database: no stock row with allocated > on hand, and allocated == units ordered;
5. prints orders/s, p50/p95/p99 per step and per order, errors, oversell, server memory (RSS
   summed over the gunicorn processes, sampled throughout), and the CPU time spent per order by
   the server, by PostgreSQL and by the load generator. ``--json`` writes all of it to a file.

Targets on the 2-core reference machine (docs/benchmarks.md): >= 200 orders/s, p99 < 250 ms,
0 errors, 0 oversell, < 600 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
ADDRESS = {
    "name": "Erika Mustermann",
    "street": "Heidestraße 17",
    "postal_code": "51147",
    "city": "Köln",
    "country": "DE",
}
TARGETS = {"orders_per_s": 200.0, "p99_ms": 250.0, "errors": 0, "oversell": 0, "rss_mb": 600.0}
# The servers and workers a bench starts run in production mode, which refuses the demo's public
# secrets; the bench's own (every bench imports this module first) are inherited by them.
for _name in ("SECRET_KEY", "VOUCHER_CODE_SECRET", "GOODWILL_CODE_SECRET"):
    os.environ.setdefault(
        _name, f"bench-only-{_name.lower().replace('_', '-')}-0123456789abcdefghij"
    )


# --- a minimal keep-alive HTTP/1.1 client -------------------------------------------------------


class Disconnected(Exception):
    pass


class Connection:
    """One keep-alive connection. Enough HTTP/1.1 for this server: Content-Length or chunked
    bodies, ``Connection: close`` honoured, one transparent reconnect when the server closed an
    idle connection before answering (gunicorn's keep-alive timeout or a recycled worker)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None
        self.reconnects = 0

    async def _open(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ):
        for attempt in (0, 1):
            if self.writer is None:
                await self._open()
                if attempt:
                    self.reconnects += 1
            try:
                return await self._exchange(method, path, body, headers)
            except (Disconnected, ConnectionError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, method, path, body, headers):
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Length: {len(body or b'')}",
        ]
        if body is not None:
            lines.append("Content-Type: application/json")
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        status_line = await self.reader.readline()
        if not status_line:
            raise Disconnected()  # closed before answering: safe to resend on a fresh connection
        status = int(status_line.split(b" ", 2)[1])
        resp_headers = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            resp_headers[k.strip().lower()] = v.strip()
        if "content-length" in resp_headers:
            data = await self.reader.readexactly(int(resp_headers["content-length"]))
        elif resp_headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readline()
            data = b"".join(chunks)
        else:
            data = await self.reader.read()
            self.close()
        if resp_headers.get("connection", "").lower() == "close":
            self.close()
        return status, resp_headers, data


# --- the load generator (runs in its own process) ----------------------------------------------


def _cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def _checkout_phase(host, port, *, clients, orders, skus, quantity, record):
    counter = iter(range(orders))
    checkout_body_cache = {}

    async def client(n):
        conn = Connection(host, port)
        try:
            for i in counter:
                sku = skus[i % len(skus)]
                t0 = time.perf_counter()
                try:
                    status, _, data = await conn.request("POST", "/api/v1/carts", b"")
                    t1 = time.perf_counter()
                    if status != 201:
                        record["errors"].append(
                            ("create_cart", status, data[:300].decode(errors="replace"))
                        )
                        continue
                    cart_id = json.loads(data)["id"]
                    line = json.dumps({"sku": sku, "quantity": quantity}).encode()
                    status, _, data = await conn.request(
                        "POST", f"/api/v1/carts/{cart_id}/lines", line
                    )
                    t2 = time.perf_counter()
                    if status != 200:
                        record["errors"].append(
                            ("add_line", status, data[:300].decode(errors="replace"))
                        )
                        continue
                    body = checkout_body_cache.get(n)
                    if body is None:
                        body = checkout_body_cache[n] = json.dumps(
                            {
                                "email": f"bench{n}@example.de",
                                "shipping_address": ADDRESS,
                                "payment_method": "invoice",
                            }
                        ).encode()
                    key = uuid.uuid4().hex
                    for _attempt in range(10):
                        status, headers, data = await conn.request(
                            "POST",
                            f"/api/v1/carts/{cart_id}/checkout",
                            body,
                            {"Idempotency-Key": key},
                        )
                        if status != 429:
                            break
                        # the admission limiter (MISSION 3): come back after Retry-After with the
                        # same key, as a real client does; the wait counts in the order's time
                        record["retries_429"] = record.get("retries_429", 0) + 1
                        try:
                            await asyncio.sleep(min(10.0, float(headers.get("retry-after", "1"))))
                        except ValueError:
                            await asyncio.sleep(1.0)
                    t3 = time.perf_counter()
                except (ConnectionError, Disconnected, asyncio.IncompleteReadError) as err:
                    record["errors"].append(("connection", 0, repr(err)))
                    conn.close()
                    continue
                if status != 201:
                    record["errors"].append(
                        ("checkout", status, data[:300].decode(errors="replace"))
                    )
                    continue
                record["create_cart"].append(t1 - t0)
                record["add_line"].append(t2 - t1)
                record["checkout"].append(t3 - t2)
                record["order"].append(t3 - t0)
                record["placed"] += 1
        finally:
            record["reconnects"] += conn.reconnects
            conn.close()

    await asyncio.gather(*(client(n) for n in range(clients)))


async def run_requests(host, port, *, clients, requests, record, key="lat"):
    """``requests``: (method, path, body or None, headers or None, expected status), sent in
    order over ``clients`` keep-alive connections; the latencies of the answers with the
    expected status go to ``record[key]``, the rest to ``record["errors"]``."""
    todo = iter(requests)

    async def client(_n):
        conn = Connection(host, port)
        try:
            for method, path, body, headers, expect in todo:
                t0 = time.perf_counter()
                try:
                    status, _, data = await conn.request(
                        method, path, body.encode() if body is not None else None, headers
                    )
                except (ConnectionError, Disconnected, asyncio.IncompleteReadError) as err:
                    record["errors"].append((path, 0, repr(err)))
                    conn.close()
                    continue
                dt = time.perf_counter() - t0
                if status != expect:
                    record["errors"].append((path, status, data[:300].decode(errors="replace")))
                    continue
                record[key].append(dt)
        finally:
            record["reconnects"] += conn.reconnects
            conn.close()

    await asyncio.gather(*(client(n) for n in range(clients)))


async def _trivial_phase(host, port, *, clients, requests, path, record):
    await run_requests(
        host,
        port,
        clients=clients,
        requests=[("GET", path, None, None, 200)] * requests,
        record=record,
        key="trivial",
    )


def serve_phases(conn, new_record, run) -> None:
    """The load generator's loop (in its own process): for each ``(phase, params)`` received,
    ``await run(phase, params, record)`` on a fresh ``new_record()`` and send the record back
    with its wall time and the process's own CPU time; ``None`` ends it."""
    try:
        import uvloop  # noqa: F401  (optional; the stdlib loop is used when it is not installed)

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    while True:
        cmd = conn.recv()
        if cmd is None:
            return
        phase, params = cmd
        record = new_record()
        cpu0, t0 = _cpu_self(), time.perf_counter()
        asyncio.run(run(phase, params, record))
        record["wall_s"] = time.perf_counter() - t0
        record["client_cpu_s"] = _cpu_self() - cpu0
        conn.send(record)


def load_generator(conn, host, port, opts):
    """Child process: run the phases when told to, report latencies and own CPU time."""

    def new_record():
        return {
            "errors": [],
            "create_cart": [],
            "add_line": [],
            "checkout": [],
            "order": [],
            "trivial": [],
            "placed": 0,
            "reconnects": 0,
            "retries_429": 0,
        }

    async def run(phase, params, record):
        if phase == "checkout":
            await _checkout_phase(
                host,
                port,
                clients=opts["clients"],
                orders=params["orders"],
                skus=opts["skus"],
                quantity=opts["quantity"],
                record=record,
            )
        else:
            await _trivial_phase(
                host,
                port,
                clients=opts["clients"],
                requests=params["requests"],
                path=params["path"],
                record=record,
            )

    serve_phases(conn, new_record, run)


# --- processes, memory and CPU accounting -------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def process_tree(root_pid: int) -> list[int]:
    kids = _children_map()
    out, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def rss_bytes(pids) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            pass
    return total


def cpu_seconds(pids) -> float:
    """utime + stime of the processes (not of reaped children: a recycled worker is sampled
    while it lives, and the master's cutime would count it twice)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


SHARED_PG_PROCESSES = ("walwriter", "wal writer", "checkpointer", "background writer", "autovacuum")


def postgres_pids(dbname: str) -> list[int]:
    """The PostgreSQL backends serving ``dbname`` plus the server's shared writers (WAL writer,
    checkpointer, ...). Backends of other databases (other people's test runs on a shared
    machine) are left out."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() not in {"postgres", "postmaster"}:
                        continue
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            words = cmd.split()
            if (words[:1] == ["postgres:"] and dbname in words[1:5]) or any(
                p in cmd for p in SHARED_PG_PROCESSES
            ):
                pids.append(int(entry))
    return pids


class Sampler(threading.Thread):
    """Samples the server's RSS (sum over master and workers) every 100 ms; keeps the peak, and
    accumulates CPU of processes that exit in between (recycled workers)."""

    def __init__(self, root_pid):
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.peak = 0
        self.last = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.last = rss_bytes(process_tree(self.root_pid))
            self.peak = max(self.peak, self.last)
            self.stop.wait(0.1)


class CpuMeter:
    """CPU seconds of a changing set of processes between two points in time. Processes that
    appear and disappear in between (a recycled gunicorn worker, a PostgreSQL backend of a closed
    connection) are tracked by sampling, so their CPU is not lost."""

    def __init__(self, pid_source):
        self.pid_source = pid_source
        self.seen: dict[int, float] = {}
        self.base: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = None

    def _sample(self):
        for pid in self.pid_source():
            c = cpu_seconds([pid])
            if c:
                self.seen[pid] = c

    def start(self):
        self.seen.clear()
        self._sample()
        self.base = dict(self.seen)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self):
        while not self._stop.wait(0.2):
            self._sample()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self._sample()
        return sum(c - self.base.get(pid, 0.0) for pid, c in self.seen.items())


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle, since boot (from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


# --- set-up -------------------------------------------------------------------------------------


def admin_url(pg_url: str) -> str:
    return urlunsplit(urlsplit(pg_url)._replace(scheme="postgresql", path="/postgres"))


def recreate_database(pg_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url(pg_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(pg_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url(pg_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def warenhaus_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "warenhaus"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "warenhaus.cli"]


def seed(variants: int, on_hand: int) -> list[str]:
    """Inside a process with DATABASE_URL set: the bench's catalog, through the services."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warenhaus.settings")
    import django

    django.setup()
    from warenhaus.catalog.services import create_category, create_product

    cat = create_category(slug="bench", name="Lasttest", name_en="Load test")
    skus = []
    for i in range(variants):
        sku = f"BENCH-{i:04d}"
        create_product(
            actor=None,
            title=f"Lasttest-Artikel {i}",
            category=cat.slug,
            variants=[{"sku": sku, "price": "49.97", "on_hand": on_hand}],
            source="bench",
        )
        skus.append(sku)
    return skus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_url_if_up() -> str:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return "redis://127.0.0.1:6379/15"
    except OSError:
        pass
    return ""


def start_server(
    env,
    port,
    log_path,
    workers,
    threads,
    access_log: str = "",
    access_format: str = "",
    app: str = "",
):
    """gunicorn as in production; the access log is off unless ``access_log`` names a file
    (bench/vouchers.py reads the server's own request times from it, in ``access_format``).
    ``app`` (``module:name`` in bench/) serves another WSGI application with the same settings."""
    env = dict(env)
    env.update({
        "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(workers), "WEB_THREADS": str(threads),
        "ACCESS_LOG": access_log, "GUNICORN_LOG_LEVEL": "warning", "DEBUG": "0", "LOG_LEVEL": "WARNING",
    })  # fmt: skip
    log = open(log_path, "wb")
    extra = ["--access-logformat", access_format] if access_format else []
    if app:
        extra += ["--pythonpath", str(ROOT / "bench"), app]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:warenhaus.gunicorn_conf", *extra],
        env=env,
        cwd=str(ROOT),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}; see {log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(
                    f"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
                )
                if b" 200 " in s.recv(64):
                    # wait until every worker has booted (each imports Django on its own)
                    if len(process_tree(proc.pid)) >= workers + 1:
                        return proc
        except OSError:
            pass
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit(f"gunicorn did not come up within 60 s; see {log_path}")


def stop_server(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def db_check(db_url: str, quantity: int) -> dict:
    import psycopg

    with psycopg.connect(urlunsplit(urlsplit(db_url)._replace(scheme="postgresql"))) as conn:
        bad_rows = conn.execute(
            "SELECT count(*) FROM inventory_stock WHERE allocated > on_hand OR on_hand < 0 OR allocated < 0"
        ).fetchone()[0]
        on_hand, allocated = conn.execute(
            "SELECT coalesce(sum(on_hand), 0), coalesce(sum(allocated), 0) FROM inventory_stock"
        ).fetchone()
        orders = conn.execute("SELECT count(*) FROM orders_order").fetchone()[0]
        units = conn.execute("SELECT coalesce(sum(quantity), 0) FROM orders_orderline").fetchone()[
            0
        ]
    return {
        "stock_rows_oversold": bad_rows,
        "on_hand": on_hand,
        "allocated": allocated,
        "orders_in_db": orders,
        "units_ordered": units,
    }


# --- report -------------------------------------------------------------------------------------


def pct(values, p) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100 * len(values) + 0.5)) - 1))
    return values[k] * 1000


def lat(values) -> dict:
    return {
        "n": len(values),
        "mean_ms": round(statistics.fmean(values) * 1000, 2) if values else None,
        "p50_ms": round(pct(values, 50), 2),
        "p95_ms": round(pct(values, 95), 2),
        "p99_ms": round(pct(values, 99), 2),
        "max_ms": round(max(values) * 1000, 2) if values else None,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--orders",
        type=int,
        default=2000,
        help="orders to place in the measured phase (default 2000)",
    )
    ap.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients (default 32)")
    ap.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() + 1)),
        help="gunicorn worker processes (default: as in production, cores + 1)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("WEB_THREADS", 4)),
        help="threads per worker (default 4, as in production; 1 = sync worker)",
    )
    ap.add_argument(
        "--variants", type=int, default=100, help="products to spread the orders over (default 100)"
    )
    ap.add_argument("--quantity", type=int, default=1, help="units per order (default 1)")
    ap.add_argument(
        "--warmup", type=int, default=100, help="orders placed before measuring (default 100)"
    )
    ap.add_argument(
        "--trivial-path", default="/api/v1/health", help="the cheap endpoint to compare with"
    )
    ap.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server",
    )
    ap.add_argument("--db", default="warenhaus_bench", help="database to (re)create for the bench")
    ap.add_argument(
        "--no-redis", action="store_true", help="use the database cache even when Redis is up"
    )
    ap.add_argument("--keep-db", action="store_true", help="leave the bench database behind")
    ap.add_argument(
        "--profile",
        metavar="SECONDS",
        type=float,
        default=0,
        help="run py-spy on all workers for this many seconds of the checkout phase (needs py-spy on PATH)",
    )
    ap.add_argument(
        "--profile-wall",
        action="store_true",
        help="profile wall-clock time (waits included) instead of time holding the GIL (CPU)",
    )
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = ap.parse_args(argv)

    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    base = args.pg_url.rstrip("/")
    db_url = f"{base}/{args.db}"
    total_orders = args.orders + args.warmup
    per_variant = -(-total_orders * args.quantity // args.variants) + 5

    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": db_url,
            "DJANGO_SETTINGS_MODULE": "warenhaus.settings",
            "DB_CONN_MAX_AGE": "600",
            "WARENHAUS_VAR": str(out_dir / "var"),
        }
    )
    env["REDIS_URL"] = "" if args.no_redis else redis_url_if_up()
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT / "src"), env.get("PYTHONPATH", "")])
    )

    print(f"bench: database {args.db} (fresh), {args.variants} products x {per_variant} units")
    recreate_database(base, args.db)
    subprocess.run([*warenhaus_cmd(), "migrate", "-v", "0"], env=env, check=True, cwd=str(ROOT))
    seed_out = subprocess.run(
        [sys.executable, __file__, "_seed", str(args.variants), str(per_variant)],
        env=env,
        check=True,
        cwd=str(ROOT),
        capture_output=True,
        text=True,
    )
    skus = json.loads(seed_out.stdout.strip().splitlines()[-1])

    port = free_port()
    log_path = out_dir / "gunicorn.log"
    server = start_server(env, port, log_path, args.workers, args.threads)
    kind = "gthread" if args.threads > 1 else "sync"
    print(
        f"bench: gunicorn {args.workers} workers x {args.threads} threads ({kind}) on 127.0.0.1:{port}; cache: {'redis' if env['REDIS_URL'] else 'database'}"
    )
    sampler = Sampler(server.pid)
    sampler.start()

    parent_conn, child_conn = mp.get_context("spawn").Pipe()
    gen = mp.get_context("spawn").Process(
        target=load_generator,
        args=(
            child_conn,
            "127.0.0.1",
            port,
            {"clients": args.clients, "skus": skus, "quantity": args.quantity},
        ),
        daemon=True,
    )
    gen.start()
    server_cpu = CpuMeter(lambda: process_tree(server.pid))
    pg_cpu = CpuMeter(lambda: postgres_pids(args.db))
    results: dict = {
        "config": vars(args)
        | {"python": sys.version.split()[0], "cores": os.cpu_count(), "worker_class": kind}
    }
    try:
        if args.warmup:
            parent_conn.send(("checkout", {"orders": args.warmup}))
            warm = parent_conn.recv()
            print(f"bench: warm-up {warm['placed']} orders, {len(warm['errors'])} errors")
        else:
            warm = {"placed": 0, "errors": []}

        profiler = None
        if args.profile:
            profile_path = out_dir / "profile.txt"
            profiler = subprocess.Popen(
                ["py-spy", "record", "--pid", str(server.pid), "--subprocesses", "--duration", str(int(args.profile)), "--rate", "200", "--format", "raw", "--output", str(profile_path), "--nonblocking", *([] if args.profile_wall else ["--gil"])],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1.0)
        server_cpu.start()
        pg_cpu.start()
        busy0, load0 = machine_busy_seconds(), os.getloadavg()[0]
        parent_conn.send(("checkout", {"orders": args.orders}))
        rec = parent_conn.recv()
        s_cpu, p_cpu = server_cpu.stop(), pg_cpu.stop()
        workers_seen_checkout = len(server_cpu.seen) - 1
        busy1, load1 = machine_busy_seconds(), os.getloadavg()[0]
        rss_checkout_peak = sampler.peak
        if profiler is not None:
            profiler.wait()

        server_cpu.start()
        pg_cpu.start()
        tbusy0 = machine_busy_seconds()
        parent_conn.send(("trivial", {"requests": 3 * args.orders, "path": args.trivial_path}))
        triv = parent_conn.recv()
        t_s_cpu, t_p_cpu = server_cpu.stop(), pg_cpu.stop()
        workers_seen_trivial = len(server_cpu.seen) - 1
        tbusy1 = machine_busy_seconds()
        parent_conn.send(None)
        gen.join(10)
    finally:
        sampler.stop.set()
        sampler.join()
        stop_server(server)

    check = db_check(db_url, args.quantity)
    if not args.keep_db:
        drop_database(base, args.db)

    placed_total = warm["placed"] + rec["placed"]
    expected_units = placed_total * args.quantity
    oversell = (
        check["stock_rows_oversold"]
        + abs(check["allocated"] - expected_units)
        + abs(check["units_ordered"] - expected_units)
        + abs(check["orders_in_db"] - placed_total)
    )
    orders_per_s = rec["placed"] / rec["wall_s"]
    n = max(1, rec["placed"])
    results["checkout_phase"] = {
        "orders": rec["placed"], "wall_s": round(rec["wall_s"], 2), "orders_per_s": round(orders_per_s, 1),
        "requests_per_s": round(3 * rec["placed"] / rec["wall_s"], 1),
        "errors": len(rec["errors"]), "error_samples": rec["errors"][:5], "reconnects": rec["reconnects"], "retries_429": rec.get("retries_429", 0),
        "latency": {step: lat(rec[step]) for step in ("create_cart", "add_line", "checkout", "order")},
        "cpu_ms_per_order": {"server": round(s_cpu / n * 1000, 2), "postgres": round(p_cpu / n * 1000, 2), "load_generator": round(rec["client_cpu_s"] / n * 1000, 2)},
        "cpu_cores_busy": {
            "server": round(s_cpu / rec["wall_s"], 2), "postgres": round(p_cpu / rec["wall_s"], 2), "load_generator": round(rec["client_cpu_s"] / rec["wall_s"], 2),
            "whole_machine": round((busy1 - busy0) / rec["wall_s"], 2),
            "other_processes": round(max(0.0, (busy1 - busy0) - s_cpu - p_cpu - rec["client_cpu_s"]) / rec["wall_s"], 2),
        },
        "load_average_1min": [round(load0, 2), round(load1, 2)],
        "worker_restarts": max(0, workers_seen_checkout - args.workers),
    }  # fmt: skip
    tn = max(1, len(triv["trivial"]))
    results["trivial_phase"] = {
        "path": args.trivial_path, "requests": len(triv["trivial"]), "wall_s": round(triv["wall_s"], 2),
        "requests_per_s": round(len(triv["trivial"]) / triv["wall_s"], 1), "errors": len(triv["errors"]),
        "worker_restarts": max(0, workers_seen_trivial - args.workers),
        "latency": lat(triv["trivial"]),
        "cpu_ms_per_request": {"server": round(t_s_cpu / tn * 1000, 3), "postgres": round(t_p_cpu / tn * 1000, 3), "load_generator": round(triv["client_cpu_s"] / tn * 1000, 3)},
        "cpu_cores_busy": {"whole_machine": round((tbusy1 - tbusy0) / triv["wall_s"], 2), "other_processes": round(max(0.0, (tbusy1 - tbusy0) - t_s_cpu - t_p_cpu - triv["client_cpu_s"]) / triv["wall_s"], 2)},
    }  # fmt: skip
    results["database"] = check | {"orders_placed_incl_warmup": placed_total, "oversell": oversell}
    results["memory"] = {
        "server_rss_peak_mb": round(sampler.peak / 2**20, 1),
        "server_rss_peak_checkout_mb": round(rss_checkout_peak / 2**20, 1),
        "server_rss_end_mb": round(sampler.last / 2**20, 1),
    }
    cp = results["checkout_phase"]
    errors = cp["errors"] + len(warm["errors"]) + results["trivial_phase"]["errors"]
    verdict = {
        "orders_per_s": (cp["orders_per_s"], cp["orders_per_s"] >= TARGETS["orders_per_s"]),
        "order_p99_ms": (
            cp["latency"]["order"]["p99_ms"],
            cp["latency"]["order"]["p99_ms"] < TARGETS["p99_ms"],
        ),
        "errors": (errors, errors == 0),
        "oversell": (oversell, oversell == 0),
        "rss_mb": (
            results["memory"]["server_rss_peak_mb"],
            results["memory"]["server_rss_peak_mb"] < TARGETS["rss_mb"],
        ),
    }
    results["targets"] = {k: {"value": v, "met": ok} for k, (v, ok) in verdict.items()}

    print_report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out_dir / f"checkout-{stamp}.json").write_text(json.dumps(results, indent=2, default=str))
    return 0 if all(ok for _, ok in verdict.values()) else 1


def print_report(r):
    cp, tp = r["checkout_phase"], r["trivial_phase"]
    c = r["config"]
    print()
    print(
        f"checkout: {cp['orders']} orders, {c['clients']} clients, gunicorn {c['workers']}x{c['threads']} {c['worker_class']}, {c['cores']} cores"
    )
    print(
        f"  throughput      {cp['orders_per_s']:8.1f} orders/s   ({cp['requests_per_s']:.0f} requests/s, {cp['wall_s']} s)"
    )
    print(f"  {'latency (ms)':15} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    for step in ("create_cart", "add_line", "checkout", "order"):
        lat = cp["latency"][step]
        print(
            f"  {step:15} {lat['p50_ms']:8.1f} {lat['p95_ms']:8.1f} {lat['p99_ms']:8.1f} {lat['max_ms'] or 0:8.1f}"
        )
    print(
        f"  errors          {cp['errors']}  (reconnects {cp['reconnects']}, worker restarts {cp['worker_restarts']})"
        + (f"  e.g. {cp['error_samples'][0]}" if cp["error_samples"] else "")
    )
    print(
        f"  CPU ms / order  server {cp['cpu_ms_per_order']['server']}, postgres {cp['cpu_ms_per_order']['postgres']}, load generator {cp['cpu_ms_per_order']['load_generator']}"
    )
    b = cp["cpu_cores_busy"]
    print(
        f"  cores busy      server {b['server']}, postgres {b['postgres']}, load generator {b['load_generator']}; whole machine {b['whole_machine']} of {c['cores']} (other processes {b['other_processes']}; load avg {cp['load_average_1min'][0]} -> {cp['load_average_1min'][1]})"
    )
    lat = tp["latency"]
    print(
        f"trivial GET {tp['path']}: {tp['requests_per_s']:.0f} requests/s, p50 {lat['p50_ms']:.1f} p95 {lat['p95_ms']:.1f} p99 {lat['p99_ms']:.1f} ms, errors {tp['errors']} (worker restarts {tp['worker_restarts']})"
    )
    print(
        f"  CPU ms / request  server {tp['cpu_ms_per_request']['server']}, postgres {tp['cpu_ms_per_request']['postgres']}, load generator {tp['cpu_ms_per_request']['load_generator']}; whole machine busy {tp['cpu_cores_busy']['whole_machine']} cores (other processes {tp['cpu_cores_busy']['other_processes']})"
    )
    d = r["database"]
    print(
        f"database: {d['orders_in_db']} orders, {d['units_ordered']} units ordered, allocated {d['allocated']} of {d['on_hand']} on hand, oversold rows {d['stock_rows_oversold']} -> oversell {d['oversell']}"
    )
    m = r["memory"]
    print(
        f"memory: gunicorn RSS peak {m['server_rss_peak_mb']} MB (end {m['server_rss_end_mb']} MB)"
    )
    print(
        "targets: "
        + ", ".join(
            f"{k} {t['value']} {'OK' if t['met'] else 'MISSED'}" for k, t in r["targets"].items()
        )
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_seed":
        print(json.dumps(seed(int(sys.argv[2]), int(sys.argv[3]))))
        sys.exit(0)
    sys.exit(main())
