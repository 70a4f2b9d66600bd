"""``warenhaus serve``: the web server.

Production mode (the default) refuses to start without the production secrets (README,
Security), collects static files and then replaces this process with
gunicorn, configured by :mod:`warenhaus.gunicorn_conf` from the environment (``BIND``,
``WEB_CONCURRENCY``, ...), so signals from a process manager reach gunicorn's master directly:
SIGTERM stops it gracefully, SIGHUP reloads the workers. ``--dev`` runs Django's development
server with auto-reload instead (``DEBUG`` on), for working on the code.
"""

from __future__ import annotations

import os
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


def gunicorn_argv(
    *, bind: str | None = None, workers: int | None = None, extra: list[str] | None = None
) -> list[str]:
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:warenhaus.gunicorn_conf"]
    if bind:
        argv += ["--bind", bind]
    if workers:
        argv += ["--workers", str(workers)]
    return argv + list(extra or [])


class Command(BaseCommand):
    help = "Run the web server: gunicorn in production mode, or Django's development server with --dev."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dev",
            action="store_true",
            help="Django's development server with auto-reload (DEBUG on)",
        )
        parser.add_argument(
            "--bind", default=None, help="address:port (default: $BIND or 127.0.0.1:8000)"
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="gunicorn worker processes (default: $WEB_CONCURRENCY or 2 x cores + 1)",
        )
        parser.add_argument(
            "--no-collectstatic",
            action="store_true",
            help="skip collectstatic (static files collected at build time)",
        )
        parser.add_argument("gunicorn_args", nargs="*", help="further gunicorn options, after --")

    def handle(
        self,
        *args,
        dev=False,
        bind=None,
        workers=None,
        no_collectstatic=False,
        gunicorn_args=(),
        **options,
    ):
        if dev:
            os.environ["DEBUG"] = "1"  # for the reloaded child, which reads settings afresh
            settings.DEBUG = True
            addr = bind or os.environ.get("BIND", "127.0.0.1:8000")
            call_command("runserver", addr, use_reloader=True)
            return
        from django.core.exceptions import ImproperlyConfigured

        from warenhaus.core.checks import require_production_secrets

        try:
            require_production_secrets("warenhaus serve")
        except ImproperlyConfigured as err:
            raise CommandError(str(err)) from None
        if not no_collectstatic:
            try:
                call_command("collectstatic", interactive=False, verbosity=0)
            except (
                Exception
            ) as err:  # e.g. a read-only STATIC_ROOT: WhiteNoise still serves from the apps
                self.stderr.write(
                    f"collectstatic failed ({err}); serving static files from the apps' folders"
                )
        argv = gunicorn_argv(bind=bind, workers=workers, extra=list(gunicorn_args))
        self.stdout.write(f"warenhaus serve: {' '.join(argv[1:])}")
        self.stdout.flush()
        sys.stderr.flush()
        try:
            os.execv(sys.executable, argv)  # noqa: S606  (our interpreter, fixed gunicorn argv)
        except OSError as err:
            raise CommandError(f"could not start gunicorn: {err}") from None
