"""``warenhaus worker`` and ``warenhaus serve`` as the processes an operator runs.

The in-process test runs the worker command in batch mode against the test database and a real
SMTP server. The subprocess tests start the real commands on a scratch SQLite database of their
own (whatever database the suite runs on) and stop them with SIGTERM, as a process manager does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.smtp import free_port, smtp_server  # noqa: F401  (a fixture)
from warenhaus.cli import main
from warenhaus.notifications.models import OutboxMessage

SRC = Path(__file__).resolve().parents[2] / "src"


def test_worker_batch_delivers_queued_mail_and_requeues_lost_tasks(
    db, make_product, address, smtp_server, capsys
):
    from django_tasks_db.models import DBTaskResult

    from warenhaus.checkout import services as checkout

    v = make_product(price="49.97").variants.get()
    cart, _ = checkout.create_cart()
    checkout.add_line(cart_id=cart.id, sku=v.sku, quantity=1)
    order = checkout.place_order(
        cart_id=cart.id,
        email="erika@example.de",
        shipping_address=address,
        payment_method="invoice",
    )
    # a message whose task got lost long ago: the worker's start-up check picks it up
    lost = OutboxMessage.objects.create(
        kind="test",
        to_email="lost@example.de",
        subject="Verloren",
        body_text="Hallo",
        next_attempt_at=order.placed_at.replace(year=2020),
    )

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    assert main(["worker", "--batch", "--no-startup-delay", "--no-reload", "-v", "0"]) == 0
    assert {sig: signal.getsignal(sig) for sig in before} == before, (
        "the worker gives the signal handlers back"
    )

    mails = smtp_server.wait_for(2)
    assert {m.rcpt_tos[0] for m in mails} == {"erika@example.de", "lost@example.de"}
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}
    assert not DBTaskResult.objects.filter(status="READY").exists()
    lost.refresh_from_db()
    assert lost.attempts == 1


@pytest.fixture
def scratch_env(tmp_path):
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
            "WARENHAUS_VAR": str(tmp_path / "var"),
            "DJANGO_SETTINGS_MODULE": "warenhaus.settings",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH", "")])),
            "LOG_LEVEL": "WARNING",
            "ACCESS_LOG": "",
        }
    )
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "-m", "warenhaus.cli", "migrate", "-v", "0"],
        env=env,
        cwd=tmp_path,
        check=True,
        timeout=120,
    )
    return env


def _stop(proc: subprocess.Popen, timeout: float = 15) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"did not stop within {timeout} s of SIGTERM") from None


def test_worker_stops_cleanly_on_sigterm(scratch_env, tmp_path):
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "warenhaus.cli", "worker", "--no-startup-delay"],
            env=scratch_env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while (
        "Starting worker" not in log_path.read_text()
    ):  # its signal handlers are in place from here on
        assert proc.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, "worker did not start"
        time.sleep(0.2)
    assert _stop(proc) == 0
    out = log_path.read_text()
    assert "queues default,mail" in out and "shutting down gracefully" in out


def _start_serve(env, cwd) -> tuple[subprocess.Popen, str]:
    """``warenhaus serve`` with one worker, once it answers: the process and its base address."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "warenhaus.cli",
            "serve",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
        ],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/v1/openapi.json", timeout=2) as resp:
                assert resp.status == 200
            return proc, base
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read()) from None
            if time.monotonic() >= deadline:
                _stop(proc)
                raise AssertionError("server did not come up") from None
            time.sleep(0.3)


def test_serve_runs_gunicorn_with_static_files_and_stops_on_sigterm(scratch_env, tmp_path):
    proc, base = _start_serve(scratch_env, tmp_path)
    try:
        with urllib.request.urlopen(f"{base}/static/web/htmx.min.js", timeout=5) as resp:
            assert resp.status == 200 and len(resp.read()) > 1000
        assert (Path(scratch_env["WARENHAUS_VAR"]) / "static" / "web" / "htmx.min.js").exists(), (
            "collectstatic ran first"
        )
    finally:
        code = _stop(proc)
    out = proc.stdout.read()
    assert code == 0, out
    assert "gunicorn" in out.lower()


def _head(url: str):
    """Status and headers of a GET, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers
    except urllib.error.HTTPError as err:
        return err.code, err.headers


def test_serve_answers_without_naming_its_server_software(scratch_env, tmp_path):
    proc, base = _start_serve(scratch_env, tmp_path)
    try:
        answers = {
            path: _head(base + path)
            for path in (
                "/api/v1/health",
                "/",
                "/cart/",
                "/api/v1/products",
                "/api/v1/nirgends",
                "/static/web/htmx.min.js",
                "/gibt-es-nicht/",
            )
        }
    finally:
        code = _stop(proc)
    assert code == 0, proc.stdout.read()
    assert {path: status for path, (status, _) in answers.items()} == {
        "/api/v1/health": 200,
        "/": 200,
        "/cart/": 200,
        "/api/v1/products": 200,
        "/api/v1/nirgends": 404,
        "/static/web/htmx.min.js": 200,
        "/gibt-es-nicht/": 404,
    }
    for path, (_, headers) in answers.items():
        assert headers.get_all("Server") is None, (path, headers.get_all("Server"))
        assert "gunicorn" not in str(headers).lower(), path
    assert answers["/cart/"][1]["Cache-Control"] == "no-store"
