"""Fixtures for the concurrency proofs: seeding through the services, and the real production
server (gunicorn) running against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from .support import SRC, Server, database_url_for_current_test_db, free_port


@pytest.fixture
def seed_variant(transactional_db):
    """``seed_variant(on_hand=10)`` -> a fresh, active variant (committed, so other connections
    and processes see it)."""
    from warenhaus.catalog.services import create_category, create_product

    counter = iter(range(1, 10_000))

    def make(*, on_hand: int = 10, price: str = "49.97", sku: str | None = None):
        n = next(counter)
        cat = create_category(
            slug=f"rush-{n}-{os.getpid()}", name=f"Ansturm {n}", name_en=f"Rush {n}"
        )
        sku = sku or f"RUSH-{os.getpid()}-{n}"
        product = create_product(
            actor=None,
            title=f"Vorbestellung {sku}",
            category=cat.slug,
            variants=[{"sku": sku, "price": price, "on_hand": on_hand}],
        )
        return product.variants.get()

    return make


@pytest.fixture
def live_gunicorn(transactional_db, tmp_path):
    """The production server (gunicorn, several workers) on a free port, pointed at the test
    database. Stopped before the test database is flushed."""
    import httpx

    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url_for_current_test_db(),
            "DJANGO_SETTINGS_MODULE": "warenhaus.settings",
            "WARENHAUS_VAR": str(tmp_path / "var"),
            "DB_CONN_MAX_AGE": "60",
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "PAYMENT_METHODS": "invoice,test",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH", "")])),
        }
    )
    env.pop("REDIS_URL", None)  # the database cache lives in the test database too
    # The production configuration (warenhaus.gunicorn_conf: gthread workers, keep-alive, no
    # control socket), sized by the same environment variables a deployment uses.
    env.update(
        {
            "BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": "3",
            "WEB_THREADS": "4",
            "ACCESS_LOG": "",
            "GUNICORN_LOG_LEVEL": "warning",
        }
    )
    cmd = [sys.executable, "-m", "gunicorn", "-c", "python:warenhaus.gunicorn_conf"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=str(tmp_path),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"gunicorn exited with {proc.returncode}:\n{server.log()}")
            try:
                if httpx.get(f"{server.base_url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not answer within 60 s:\n{server.log()}")
            time.sleep(0.2)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()  # gunicorn's arbiter stops its workers and their DB connections
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(timeout=5)
