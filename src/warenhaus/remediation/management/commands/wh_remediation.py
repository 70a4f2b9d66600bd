"""``warenhaus remediation``: clean up after a leaked code or a price typo, from the command line.

    warenhaus remediation preview (--codes C1,C2 | --campaign ID | --sku S --below 100.00 | --orders N1,N2 | --orders-file F)
                                  [--from ISO] [--to ISO] [--cancel | --hold] [--notify] [--goodwill 10.00]
                                  --reason R [--note TEXT] --by STAFF_EMAIL
    warenhaus remediation execute ID --by STAFF_EMAIL [--foreground | --wait]
    warenhaus remediation watch ID          a progress bar until the job is done
    warenhaus remediation show ID
    warenhaus remediation export ID [--output FILE]   the CSV (default: remediation-ID.csv)
    warenhaus remediation list

``preview`` never changes an order; ``execute`` queues the job for the worker (``--wait`` then
shows its progress, ``--foreground`` runs it in this process instead). Executing a job twice
changes nothing more; a job interrupted by a crash goes on where it stopped.
"""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from warenhaus.core.errors import DomainError
from warenhaus.core.models import AuditSource
from warenhaus.remediation.models import JobState


def _split(raw: str | None) -> list[str]:
    return [p.strip() for p in (raw or "").replace("\n", ",").split(",") if p.strip()]


def bar(job, width: int = 30) -> str:
    filled = job.percent * width // 100
    return (
        f"[{'#' * filled}{'-' * (width - filled)}] {job.percent:3d}%  {job.state:<7}  orders {job.processed}/{job.total}"
        f"  customers {job.customers_done}/{job.customers_total}"
    )


class Command(BaseCommand):
    help = "Preview, execute, follow and export remediation jobs (cancel or hold the orders of a leaked code or a price typo)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        p = sub.add_parser("preview", help="make a job and show what it would do (changes nothing)")
        what = p.add_mutually_exclusive_group(required=True)
        what.add_argument("--codes", help="voucher codes, comma-separated")
        what.add_argument("--campaign", type=int, help="every code of this campaign")
        what.add_argument("--sku")
        what.add_argument("--orders", help="order numbers, comma-separated")
        what.add_argument(
            "--orders-file",
            help="a file of order numbers (one per line, or CSV with the number first)",
        )
        p.add_argument("--below", help="with --sku: unit price floor, e.g. 100.00")
        p.add_argument(
            "--from", dest="placed_from", help="placed at or after (ISO 8601 with offset)"
        )
        p.add_argument("--to", dest="placed_to", help="placed at or before (ISO 8601 with offset)")
        act = p.add_mutually_exclusive_group()
        act.add_argument("--cancel", action="store_true", help="cancel what has not shipped")
        act.add_argument("--hold", action="store_true", help="put what has not shipped on hold")
        p.add_argument("--notify", action="store_true", help="tell each affected customer once")
        p.add_argument(
            "--goodwill",
            help="a single-use goodwill voucher of this many EUR per affected customer (implies --notify)",
        )
        p.add_argument("--reason", required=True)
        p.add_argument("--note", default="", help="a sentence for the customers' notice")
        p.add_argument(
            "--by", required=True, help="e-mail of the staff member acting (audit trail)"
        )
        p.add_argument(
            "--execute", action="store_true", help="execute right away (then like 'execute --wait')"
        )
        e = sub.add_parser("execute", help="execute a previewed job (or resume a failed one)")
        e.add_argument("job", type=int)
        e.add_argument("--by", required=True)
        how = e.add_mutually_exclusive_group()
        how.add_argument(
            "--foreground", action="store_true", help="run it in this process, not in the worker"
        )
        how.add_argument(
            "--wait", action="store_true", help="show the worker's progress until done"
        )
        w = sub.add_parser("watch", help="show a job's progress until it is done")
        w.add_argument("job", type=int)
        w.add_argument("--interval", type=float, default=1.0)
        s = sub.add_parser("show", help="a job's state, counts and preview")
        s.add_argument("job", type=int)
        x = sub.add_parser("export", help="a job's orders and outcomes as CSV")
        x.add_argument("job", type=int)
        x.add_argument("--output", default="")
        sub.add_parser("list", help="recent jobs")

    def handle(self, *args, **opts):
        try:
            return getattr(self, f"_{opts['action']}")(opts)
        except DomainError as err:
            raise CommandError(f"{err.code}: {err.detail}") from None

    def _actor(self, email: str):
        from django.contrib.auth import get_user_model

        from warenhaus.accounts.services import normalise_email

        user = get_user_model().objects.filter(email=normalise_email(email)).first()
        if user is None:
            raise CommandError(f"no account {email}")
        return user

    def _preview(self, opts):
        from warenhaus.remediation import services

        selector: dict = {}
        if opts["codes"]:
            selector["voucher_codes"] = _split(opts["codes"])
        elif opts["campaign"] is not None:
            selector["campaigns"] = [opts["campaign"]]
        elif opts["sku"]:
            selector.update(sku=opts["sku"], unit_price_below=opts["below"])
        elif opts["orders"]:
            selector["order_numbers"] = _split(opts["orders"])
        else:
            with open(opts["orders_file"], encoding="utf-8") as fh:
                selector["order_numbers"] = [
                    line.split(",")[0].strip()
                    for line in fh
                    if line.strip() and not line.lower().startswith("order")
                ]
        for key in ("placed_from", "placed_to"):
            if opts[key]:
                selector[key] = opts[key]
        actions: list = [a for a in ("cancel", "hold", "notify") if opts[a]]
        if opts["goodwill"]:
            actions.append({"goodwill_voucher": {"amount": opts["goodwill"]}})
        actor = self._actor(opts["by"])
        job = services.create_job(
            actor=actor,
            selector=selector,
            actions=actions,
            reason=opts["reason"],
            customer_note=opts["note"],
            source=AuditSource.CLI,
        )
        self._print_job(job)
        if opts["execute"]:
            self._execute({"job": job.pk, "by": opts["by"], "foreground": False, "wait": True})
        else:
            self.stdout.write(
                f"\nNothing has changed. To execute: warenhaus remediation execute {job.pk} --by {opts['by']} --wait"
            )

    def _execute(self, opts):
        from warenhaus.remediation import services

        actor = self._actor(opts["by"])
        job, started = services.execute(job_id=opts["job"], actor=actor, source=AuditSource.CLI)
        self.stdout.write(
            f"job {job.pk}: {'started' if started else 'already ' + job.state} ({job.total} orders)"
        )
        if opts["foreground"]:
            state = services.run(job.pk, progress=self._draw)
            if state == JobState.RUNNING:
                self.stdout.write(
                    "A worker is running this job already; following its progress instead."
                )
                return self._watch({"job": job.pk, "interval": 1.0})
            self._done(services.get_job(job.pk))
        elif opts["wait"]:
            self._watch({"job": job.pk, "interval": 1.0})
        else:
            self.stdout.write(
                f"The worker runs it. Follow it with: warenhaus remediation watch {job.pk}"
            )

    def _draw(self, job) -> None:
        if sys.stdout.isatty():
            self.stdout.write("\r" + bar(job), ending="")
            self.stdout.flush()
        else:
            self.stdout.write(bar(job))

    def _watch(self, opts):
        from warenhaus.remediation import services

        last = None
        while True:
            job = services.get_job(opts["job"])
            shown = (job.state, job.processed, job.customers_done)
            if shown != last:
                self._draw(job)
                last = shown
            if job.state in (JobState.DONE, JobState.FAILED, JobState.PREVIEW):
                break
            time.sleep(opts["interval"])
        self._done(job)

    def _done(self, job) -> None:
        if sys.stdout.isatty():
            self.stdout.write("")
        if job.state == JobState.FAILED:
            raise CommandError(
                f"job {job.pk} failed: {job.last_error}\nExecute it again to resume where it stopped."
            )
        self._print_counts(job)
        if job.state == JobState.DONE:
            self.stdout.write(
                self.style.SUCCESS(
                    f"job {job.pk} is done. CSV: warenhaus remediation export {job.pk}"
                )
            )

    def _print_counts(self, job) -> None:
        from warenhaus.remediation.services import counts

        self.stdout.write("  " + "  ".join(f"{k}={v}" for k, v in counts(job).items()))

    def _print_job(self, job) -> None:
        p = job.preview
        self.stdout.write(f"job {job.pk} ({job.state}): {job.reason}")
        self.stdout.write(
            f"  selects {p['orders']} orders of {p['customers']} customers, total {p['amounts']['total']['amount']} EUR, discounts {p['amounts']['discount']['amount']} EUR"
        )
        self.stdout.write(
            f"  already shipped (out of reach): {p['out_of_reach']}   already cancelled: {p['already_cancelled']}   by status: {p['by_status']}"
        )
        a = p["affected"]
        verb = (
            "cancels"
            if job.actions["cancel"]
            else "holds"
            if job.actions["hold"]
            else "leaves as they are"
        )
        self.stdout.write(
            f"  executing {verb} {a['orders']} orders ({a['total']['amount']} EUR) of {a['customers']} customers"
            + (", notifying each once" if job.actions["notify"] else "")
        )
        if p.get("goodwill"):
            self.stdout.write(
                f"  goodwill: {p['goodwill']['vouchers']} vouchers of {p['goodwill']['amount_each']['amount']} EUR, at most {p['goodwill']['at_most']['amount']} EUR"
            )
        for s in p["sample"]:
            self.stdout.write(
                f"    {s['number']}  {s['placed_at'][:19]}  {s['status']:<16} {s['total']['amount']:>10} EUR  -{s['discount']['amount']}  {s['email']}"
            )

    def _show(self, opts):
        from warenhaus.remediation import services

        job = services.get_job(opts["job"])
        self._print_job(job)
        self.stdout.write(bar(job))
        self._print_counts(job)

    def _export(self, opts):
        from warenhaus.remediation import selectors, services

        job = services.get_job(opts["job"])
        path = opts["output"] or f"remediation-{job.pk}.csv"
        with open(path, "w", encoding="utf-8", newline="") as fh:
            for chunk in selectors.csv_rows(job):
                fh.write(chunk)
        self.stdout.write(self.style.SUCCESS(f"wrote {path}"))

    def _list(self, opts):
        from warenhaus.remediation.models import Job

        for job in Job.objects.all()[:50]:
            self.stdout.write(
                f"{job.pk:>5}  {job.state:<8} {job.created_at:%Y-%m-%d %H:%M}  {bar(job)}  {job.reason[:60]}"
            )
