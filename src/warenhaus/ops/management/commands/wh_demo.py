"""``warenhaus demo``: the database, a German demo shop in it, then server and worker.

Runs the migrations, loads the demo (idempotent: running it again adds nothing; ``--reset``
empties the database first), prints the logins, and unless ``--no-serve`` starts
``warenhaus serve`` (gunicorn, production mode) and ``warenhaus worker`` as child processes.
Ctrl-C (or SIGTERM) stops both; if either dies, the other is stopped too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Load the German demo shop (idempotent), then run server and worker on 127.0.0.1:8000."

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-serve", action="store_true", help="only migrate and load the demo data"
        )
        parser.add_argument(
            "--reset", action="store_true", help="empty the database before loading"
        )
        parser.add_argument(
            "--bind",
            default=os.environ.get("BIND", "127.0.0.1:8000"),
            help="server address (default: %(default)s)",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=int(os.environ.get("WEB_CONCURRENCY", "3")),
            help="gunicorn processes (default: %(default)s)",
        )

    def handle(
        self, *args, no_serve=False, reset=False, bind="127.0.0.1:8000", workers=3, **options
    ):
        verbosity = options.get("verbosity", 1)
        self.use_own_secrets()
        call_command("wh_migrate", verbosity=max(0, verbosity - 1))
        if reset:
            self.stdout.write("emptying the database (--reset)")
            call_command("flush", interactive=False, verbosity=0)
            cache.clear()
        # The demo offers the test card (it approves anything); production offers what
        # PAYMENT_METHODS says. The server and worker started below inherit this.
        os.environ["PAYMENT_METHODS"] = "invoice,test"
        from django.conf import settings

        settings.PAYMENT_METHODS = ["invoice", "test"]
        from warenhaus.demo.load import load

        summary = load(log=lambda line: self.stdout.write(f"  {line}"))
        self.stdout.write(self.style.SUCCESS(f"demo loaded in {summary.seconds:.1f} s"))
        base = f"http://{bind}"
        self.print_guide(summary, base)
        if no_serve:
            return
        self.serve(bind=bind, workers=workers, base=base)

    def use_own_secrets(self) -> None:
        """The demo's own secrets, where the environment gives none (production mode refuses the
        public ones built into the settings): this process and the server and worker it starts
        use them alike."""
        from warenhaus.core import demo_secrets

        for name, value in demo_secrets.ensure(settings.VAR_DIR).items():
            setattr(settings, name, value)

    def print_guide(self, summary, base: str) -> None:
        w = self.stdout.write
        w("")
        w(f"  storefront   {base}/")
        w(f"  console      {base}/console/")
        w(f"  API docs     {base}/api/v1/docs")
        for pk, title, state in summary.deals:
            w(
                f"  flash deal   {base}/deals/{pk}/   {title} ({'running' if state == 'live' else 'starts soon' if state == 'scheduled' else state})"
            )
        w("")
        w("  logins (demo passwords):")
        for email, password, roles in summary.logins:
            w(f"    {email:32} {password:18} {roles}")
        w("")
        mail = settings.EMAIL_BACKEND.rsplit(".", 2)[-2]
        if mail == "console":
            w(
                "  mails (order confirmations etc.) are printed here by the worker; set EMAIL_URL to send them"
            )
        w("")

    # --- the child processes --------------------------------------------------------------

    def serve(self, *, bind: str, workers: int, base: str) -> None:
        env = dict(
            os.environ,
            BIND=bind,
            WEB_CONCURRENCY=str(workers),
            DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "warenhaus.settings"),
        )
        cli = [sys.executable, "-m", "warenhaus.cli"]
        # New sessions: Ctrl-C reaches only us, and we stop each child exactly once.
        # S603: fixed argument lists, our own interpreter and command line
        children = {
            "server": subprocess.Popen(  # noqa: S603
                [*cli, "serve"], env=env, start_new_session=True
            ),
            "worker": subprocess.Popen(  # noqa: S603
                [*cli, "worker", "--no-reload"], env=env, start_new_session=True
            ),
        }
        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            stopping = True

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        exit_code = 0
        try:
            if self.wait_until_up(base, children):
                self.stdout.write(
                    self.style.SUCCESS(
                        f"Warenhaus is running on {base}/ (Ctrl-C stops server and worker)"
                    )
                )
            while not stopping:
                for name, proc in children.items():
                    if proc.poll() is not None:
                        self.stderr.write(
                            f"the {name} stopped (exit code {proc.returncode}); stopping the demo"
                        )
                        exit_code = proc.returncode or 1
                        stopping = True
                time.sleep(0.3)
        finally:
            self.stdout.write("stopping server and worker ...")
            for proc in children.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 25
            for proc in children.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if exit_code:
            raise CommandError("the demo stopped because a child process died")
        self.stdout.write("stopped.")

    def wait_until_up(self, base: str, children: dict, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(proc.poll() is not None for proc in children.values()):
                return False
            try:
                with urllib.request.urlopen(f"{base}/", timeout=2) as resp:  # noqa: S310  (our own server)
                    return resp.status < 500
            except Exception:
                time.sleep(0.3)
        return False
