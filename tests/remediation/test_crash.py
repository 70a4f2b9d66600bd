"""A worker killed in the middle of a remediation (SIGKILL, no chance to clean up): another
worker resumes the job when the dead one's lease has run out, and every order is cancelled and
every customer told exactly once. Real processes on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.concurrency.support import database_url_for_current_test_db

try:
    from tests.conftest import requires_postgres
except ImportError:
    from conftest import requires_postgres

pytestmark = [
    pytest.mark.postgres,
    requires_postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("pg-concurrency"),
]

SRC = Path(__file__).resolve().parents[2] / "src"
ORDERS = 100


def _worker(env, log):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "warenhaus.cli",
            "worker",
            "--no-startup-delay",
            "--no-reload",
            "-v",
            "0",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def test_a_killed_worker_is_succeeded_by_another_that_finishes_the_job(
    make_campaign, buy, make_user, tmp_path
):
    from warenhaus.notifications.models import OutboxMessage
    from warenhaus.orders.models import Order, OrderEvent
    from warenhaus.remediation import services
    from warenhaus.remediation.models import Job

    make_campaign(
        public_code="LEAK400",
        discount_value="40.00",
        min_basket="100.00",
        budget="100000.00",
        total_limit=None,
    )
    orders = [buy(code="LEAK400", email=f"kunde{i % 60}@example.de") for i in range(ORDERS)]
    support, risk = make_user(roles=["support"]), make_user(roles=["risk"])
    job = services.create_job(
        actor=risk,
        selector={"voucher_codes": ["LEAK400"]},
        actions=["cancel", "notify", {"goodwill_voucher": {"amount": "10.00"}}],
        reason="Leck",
    )
    services.execute(job_id=job.pk, actor=support)
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url_for_current_test_db(),
            "DJANGO_SETTINGS_MODULE": "warenhaus.settings",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH", "")])),
            "LOG_LEVEL": "WARNING",
            "REMEDIATION_CHUNK": "10",
            "REMEDIATION_CHUNK_PAUSE": "0.3",
            "REMEDIATION_LEASE_SECONDS": "2",
            "EMAIL_URL": "console://",
            "OUTBOX_REQUEUE_INTERVAL": "0.5",
            "VOUCHER_MONITOR_INTERVAL": "0",
        }
    )
    env.pop("REDIS_URL", None)
    with open(tmp_path / "first.log", "w") as log:
        first = _worker(env, log)
        try:
            deadline = time.monotonic() + 60
            while Job.objects.get(pk=job.pk).processed < 30:
                assert time.monotonic() < deadline, (tmp_path / "first.log").read_text()
                assert first.poll() is None, (tmp_path / "first.log").read_text()
                time.sleep(0.02)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
    cut = Job.objects.get(pk=job.pk)
    assert cut.state == "running" and 30 <= cut.processed < ORDERS, (cut.state, cut.processed)

    env["REMEDIATION_CHUNK_PAUSE"] = "0"
    with open(tmp_path / "second.log", "w") as log:
        second = _worker(env, log)
        try:
            deadline = time.monotonic() + 90
            while Job.objects.get(pk=job.pk).state != "done":
                assert time.monotonic() < deadline, (
                    Job.objects.get(pk=job.pk).state,
                    (tmp_path / "second.log").read_text(),
                )
                assert second.poll() is None, (tmp_path / "second.log").read_text()
                time.sleep(0.1)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=20)
    done = Job.objects.get(pk=job.pk)
    assert (done.processed, done.cancelled, done.customers_done, done.notified) == (
        ORDERS,
        ORDERS,
        60,
        60,
    )
    assert done.attempts == 1  # failures are counted in a row; the second runner made progress
    assert Counter(
        OrderEvent.objects.filter(order__in=orders, to_status="cancelled").values_list(
            "order_id", flat=True
        )
    ) == Counter({o.pk: 1 for o in orders})
    assert Order.objects.filter(pk__in=[o.pk for o in orders], status="cancelled").count() == ORDERS
    notices = Counter(
        OutboxMessage.objects.filter(kind="remediation_notice").values_list("to_email", flat=True)
    )
    assert notices == Counter({f"kunde{i}@example.de": 1 for i in range(60)})
