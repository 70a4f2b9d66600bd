"""``warenhaus worker``: deliver mail and run background jobs.

This is django-tasks-db's ``db_worker`` (same options: ``--batch``, ``--max-tasks``,
``--interval``, ...) with two differences: it serves the queues ``default`` and ``mail`` unless
told otherwise, and it runs the periodic work that the apps register in
:mod:`warenhaus.core.periodic`, each schedule in a thread of its own every
``--<option>-interval`` seconds (0 turns it off): today the outbox check and the recovery of
stalled remediation jobs (``--requeue-interval``), the flash-deal sweep (``--deals-interval``) and
the voucher leak monitors (``--monitor-interval``). Each runs once at start, so a worker that
comes back after a crash picks up what the crash left.

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

from warenhaus.core import periodic

log = logging.getLogger("warenhaus.worker")

DEFAULT_QUEUES = "default,mail"


def run_schedule(schedule: periodic.Schedule) -> int:
    """One round of a schedule's jobs; a failing job is logged and the others still run."""
    n = 0
    for job in schedule.jobs:
        try:
            n += job.func() or 0
        except Exception:  # the database may be briefly unavailable; the next round tries again
            log.exception("%s failed", job.name)
        finally:
            close_old_connections()
    return n


def _option_dest(schedule: periodic.Schedule) -> str:
    return f"{schedule.option.replace('-', '_')}_interval"


class PeriodicThread(threading.Thread):
    """Calls ``job`` every ``interval`` seconds until stopped. A thread of its own, so a long
    task (a mail server that takes its time to time out) does not delay it."""

    def __init__(self, interval: float, job, name: str):
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self.job = job
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
        for schedule in periodic.schedules():
            names = ", ".join(job.name for job in schedule.jobs)
            default = schedule.seconds
            if schedule.env:
                default = float(os.environ.get(schedule.env, default))
            parser.add_argument(
                f"--{schedule.option}-interval",
                dest=_option_dest(schedule),
                type=float,
                default=default,
                help=f"{schedule.help or 'Seconds between rounds'} (runs: {names}; "
                "default: %(default)s; 0 turns it off).",
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
        intervals = [(s, options.pop(_option_dest(s))) for s in periodic.schedules()]
        is_reloader_parent = (
            options.get("reload")
            and not options.get("batch")
            and os.environ.get(DJANGO_AUTORELOAD_ENV) != "true"
        )
        threads = []
        if not is_reloader_parent:
            for schedule, interval in intervals:
                if interval <= 0:
                    continue
                run_schedule(schedule)  # once at start: pick up what a crash left
                if not options.get("batch"):
                    thread = PeriodicThread(
                        interval,
                        job=lambda schedule=schedule: run_schedule(schedule),
                        name=f"periodic-{schedule.option}",
                    )
                    thread.start()
                    threads.append(thread)
        if options.get("verbosity", 1) >= 1 and not is_reloader_parent:
            every = "; ".join(
                f"{', '.join(job.name for job in s.jobs)} every {interval:g} s"
                for s, interval in intervals
            )
            self.stdout.write(f"warenhaus worker: queues {options['queue_name']}; {every}")
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            super().handle(*args, **options)
        finally:
            for thread in threads:
                thread.stop()
                thread.join(timeout=5)
            # db_worker installs its own handlers; an embedding process (tests, the demo) gets
            # its own back.
            for sig, handler in previous.items():
                signal.signal(sig, handler)
