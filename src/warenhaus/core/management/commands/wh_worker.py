"""``warenhaus worker``: deliver mail and run background jobs.

This is django-tasks-db's ``db_worker`` (same options: ``--batch``, ``--max-tasks``,
``--interval``, ...) with two differences: it serves the queues ``default`` and ``mail`` unless
told otherwise, and it looks after the outbox every ``--requeue-interval`` seconds (30 by
default), re-enqueueing messages whose delivery task was lost, e.g. because a worker was killed
mid-send (:func:`warenhaus.notifications.services.requeue_due`), and resuming remediation jobs
whose runner died (:func:`warenhaus.remediation.services.recover_stalled`). It sweeps flash deals every ``--deals-interval`` seconds (2 by default,
:func:`warenhaus.deals.services.sweep`: expired holds, paced admission, wait-list offers). It also sweeps the voucher
leak monitors every ``--monitor-interval`` seconds (15 by default,
:func:`warenhaus.promotions.services.run_monitors`), so a leaked code is paused within a minute.

SIGTERM or SIGINT stop it cleanly: the task in progress finishes, then the worker exits; a second
signal aborts the task (its message's lease runs out and it is sent again later). Several
workers may run side by side; tasks are claimed with row locks.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from django.db import close_old_connections, connections
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand

log = logging.getLogger("warenhaus.worker")

DEFAULT_QUEUES = "default,mail"


def requeue_once() -> int:
    """Outbox messages whose delivery task was lost, and remediation jobs whose runner died,
    are queued again; checkouts that died while the card was asked are settled."""
    from warenhaus.checkout.settlement import settle_stuck
    from warenhaus.notifications.services import requeue_due
    from warenhaus.remediation.services import recover_stalled

    n = 0
    for job, what in (
        (requeue_due, "outbox maintenance"),
        (recover_stalled, "remediation recovery"),
        (lambda: len(settle_stuck()), "checkout settlement"),
    ):
        try:
            n += job()
        except Exception:  # the database may be briefly unavailable; the next round tries again
            log.exception("%s failed", what)
        finally:
            close_old_connections()
    return n


def monitors_once() -> int:
    from warenhaus.promotions.services import run_monitors

    try:
        return len(run_monitors())
    except Exception:  # as above: the next round tries again
        log.exception("voucher leak monitors failed")
        return 0
    finally:
        close_old_connections()


def deals_once() -> int:
    from warenhaus.deals.services import sweep

    try:
        out = sweep(beat=True)
        return sum(out.values())
    except Exception:  # as above: the next round tries again
        log.exception("flash-deal sweep failed")
        return 0
    finally:
        close_old_connections()


class OutboxMaintenance(threading.Thread):
    """Calls ``requeue_due`` every ``interval`` seconds until stopped. A thread of its own, so a
    long task (a mail server that takes its time to time out) does not delay it."""

    def __init__(self, interval: float, job=None, name: str = "outbox-maintenance"):
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self.job = job or requeue_once
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                self.job()
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.stopped.set()


class Command(DbWorkerCommand):
    help = (
        "Deliver mail and run background jobs (queues default and mail; Ctrl-C or SIGTERM to stop)."
    )

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.set_defaults(queue_name=DEFAULT_QUEUES)
        parser.add_argument(
            "--requeue-interval",
            type=float,
            default=float(os.environ.get("OUTBOX_REQUEUE_INTERVAL", "30")),
            help="Seconds between outbox checks for messages whose delivery task was lost (default: %(default)s; 0 turns it off).",
        )
        parser.add_argument(
            "--deals-interval",
            type=float,
            default=float(os.environ.get("DEALS_SWEEP_INTERVAL", "1")),
            help="Seconds between flash-deal sweeps: expired holds, paced admission, wait-list offers, the end of deals (default: %(default)s; 0 turns it off).",
        )
        parser.add_argument(
            "--monitor-interval",
            type=float,
            default=float(os.environ.get("VOUCHER_MONITOR_INTERVAL", "15")),
            help="Seconds between sweeps of the voucher leak monitors (default: %(default)s; 0 turns it off).",
        )

    def handle(self, *args, **options) -> None:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured
        from django.core.management.base import CommandError

        from warenhaus.core.checks import require_production_secrets

        if not settings.DEBUG:  # it signs links and issues goodwill codes as production does
            try:
                require_production_secrets("warenhaus worker")
            except ImproperlyConfigured as err:
                raise CommandError(str(err)) from None
        interval = options.pop("requeue_interval")
        monitor_interval = options.pop("monitor_interval")
        deals_interval = options.pop("deals_interval")
        is_reloader_parent = (
            options.get("reload")
            and not options.get("batch")
            and os.environ.get(DJANGO_AUTORELOAD_ENV) != "true"
        )
        maintenance = None
        if interval > 0 and not is_reloader_parent:
            # Once at start: a worker that comes back after a crash picks up what the crash left.
            requeue_once()
            if not options.get("batch"):
                maintenance = OutboxMaintenance(interval)
                maintenance.start()
        sweeper = None
        if monitor_interval > 0 and not is_reloader_parent:
            monitors_once()
            if not options.get("batch"):
                sweeper = OutboxMaintenance(
                    monitor_interval, job=monitors_once, name="voucher-monitors"
                )
                sweeper.start()
        deals_sweeper = None
        if deals_interval > 0 and not is_reloader_parent:
            deals_once()
            if not options.get("batch"):
                deals_sweeper = OutboxMaintenance(
                    deals_interval, job=deals_once, name="deals-sweep"
                )
                deals_sweeper.start()
        if options.get("verbosity", 1) >= 1 and not is_reloader_parent:
            self.stdout.write(
                f"warenhaus worker: queues {options['queue_name']}, outbox check every {interval:g} s, voucher monitors every {monitor_interval:g} s"
            )
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            super().handle(*args, **options)
        finally:
            for thread in (maintenance, sweeper, deals_sweeper):
                if thread is not None:
                    thread.stop()
                    thread.join(timeout=5)
            # db_worker installs its own handlers; an embedding process (tests, the demo) gets
            # its own back.
            for sig, handler in previous.items():
                signal.signal(sig, handler)
