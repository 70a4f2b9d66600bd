"""Helpers for the concurrency proofs: a barrier-started thread pool and the address of the
test database, so a separate server process can join the same database."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"


def _connect_patiently(connection, *, attempts: int = 40) -> None:
    """Open this thread's connection before the start signal, so every shopper starts the
    checkout at the same instant instead of after a staggered connection set-up. A full server
    (``too many clients``, e.g. other test runs sharing it) is waited out, not reported as a
    checkout failure; anything else is raised."""
    from django.db import OperationalError

    for attempt in range(attempts):
        try:
            connection.ensure_connection()
            return
        except OperationalError as err:
            if "too many clients" not in str(err) or attempt == attempts - 1:
                raise
            time.sleep(0.25 + 0.05 * attempt)


def run_together(n: int, fn, *, timeout: float = 120.0) -> list:
    """Run ``fn(i)`` in ``n`` real threads released at once by a barrier. Returns each thread's
    outcome: its return value, or ``("exception", repr, traceback)``. Every thread closes its own
    database connection, so none leaks into the test database's teardown."""
    from django.db import connection

    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i):
        try:
            _connect_patiently(connection)
            barrier.wait(timeout=timeout)
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001 - the test decides what is acceptable
            results[i] = ("exception", repr(exc), traceback.format_exc())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,), name=f"shopper-{i}") for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    return results


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url_for_current_test_db() -> str:
    """The URL of the database this (transactional) test runs against: pytest-django's test
    database, e.g. ``test_warenhaus`` or ``test_warenhaus_gw1`` under xdist."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


class Server:
    def __init__(self, base_url: str, proc: subprocess.Popen, log_path: Path):
        self.base_url = base_url
        self.proc = proc
        self.log_path = log_path

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except OSError:
            return ""
