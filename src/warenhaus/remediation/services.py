"""Use-cases of remediation: make a job (with its preview), execute it, and work it off.

Working off a job (:func:`run`) happens in a worker (the ``run_remediation`` task), in the CLI
(``warenhaus remediation execute --foreground``) or in tests, always the same way:

1. The runner claims the job with a lease (``lease_owner``/``lease_until``); a second runner
   finds it taken and leaves. A runner that dies stops renewing its lease; when the lease has run
   out, the worker's sweep (:func:`recover_stalled`) hands the job to a new runner, which goes on
   where the dead one stopped.
2. Orders phase: the pending items are worked off in chunks (``REMEDIATION_CHUNK``), each in one
   transaction that acts on the orders (:func:`warenhaus.orders.services.act_on_many`), marks the
   items done and renews the lease. An item is pending until its chunk commits, so nothing is
   done twice and nothing is skipped.
3. Customers phase: each affected customer (an item cancelled, held or noted) gets one notice
   (an outbox mail with a deduplication key of job and customer) and, if chosen, one goodwill
   code, in chunks of customers, each in one transaction that marks their items notified.
4. The job is done; a second execute returns it unchanged.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F

from warenhaus.accounts.roles import can
from warenhaus.core import audit, parsing
from warenhaus.core.clock import now
from warenhaus.core.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from warenhaus.core.models import AuditSource
from warenhaus.orders import services as orders

from . import goodwill, selection
from .models import AFFECTED, Item, Job, JobState, Outcome, Phase

log = logging.getLogger("warenhaus.remediation")

ITEM_BATCH = 2000
#: what an order service result means for the item
OUTCOMES = {
    "cancelled": Outcome.CANCELLED,
    "held": Outcome.HELD,
    "shipped": Outcome.OUT_OF_REACH,
    "unchanged": Outcome.UNCHANGED,
}
COUNTERS = {
    Outcome.CANCELLED: "cancelled",
    Outcome.HELD: "held",
    Outcome.NOTED: "noted",
    Outcome.OUT_OF_REACH: "out_of_reach",
    Outcome.UNCHANGED: "unchanged",
}


class LeaseLost(Exception):
    """Another runner has taken the job over (ours was presumed dead)."""


def get_job(job_id) -> Job:
    try:
        pk = int(job_id)
    except (TypeError, ValueError):
        raise NotFound("No such remediation job.", code="remediation_not_found") from None
    job = (
        Job.objects.select_related("created_by", "executed_by", "goodwill_campaign")
        .filter(pk=pk)
        .first()
    )
    if job is None:
        raise NotFound("No such remediation job.", code="remediation_not_found")
    return job


def _reason(reason: str) -> str:
    return parsing.reason(reason, required=False)


def create_job(
    *,
    actor,
    selector,
    actions,
    dry_run: bool = True,
    reason: str = "",
    customer_note: str = "",
    source: str = AuditSource.API,
) -> Job:
    """A job with its preview. ``dry_run`` False executes it at once (it is queued for a worker)."""
    sel = selection.normalise_selector(selector)
    acts = selection.normalise_actions(actions)
    if not dry_run:
        _may_execute(actor)
    note = (customer_note or "").strip()[:2000]
    with transaction.atomic():
        job = Job.objects.create(
            reason=_reason(reason) or "remediation",
            customer_note=note,
            selector=sel,
            actions=acts,
            dry_run=bool(dry_run),
            preview=selection.preview(sel, acts),
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        if not _reason(reason):
            job.reason = f"remediation #{job.pk}"
            job.save(update_fields=["reason"])
        audit.record(
            actor=actor,
            action="remediation.create",
            obj=job,
            after={
                "selector": sel,
                "actions": acts,
                "dry_run": job.dry_run,
                "preview": _brief(job.preview),
            },
            reason=job.reason,
            source=source,
        )
        if not dry_run:
            _start(job, actor=actor, source=source)
    return job


def _brief(preview: dict) -> dict:
    return {
        k: preview.get(k) for k in ("orders", "customers", "unshipped", "out_of_reach", "affected")
    }


def _may_execute(actor) -> None:
    if actor is not None and not can(actor, "remediation.run"):
        raise Forbidden(
            "Executing a remediation needs the remediation.run capability (support or risk).",
            code="forbidden",
        )


def execute(*, job_id, actor, source: str = AuditSource.API) -> tuple[Job, bool]:
    """Start a previewed job, or resume a failed one. Returns ``(job, started_now)``; a job
    already queued, running or done is returned as it is (executing twice changes nothing)."""
    _may_execute(actor)
    try:
        return _execute(job_id=job_id, actor=actor, source=source)
    except DomainError as err:
        err.run_after_rollback()
        raise


def _execute(*, job_id, actor, source: str) -> tuple[Job, bool]:
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=get_job(job_id).pk).first()
        if job.state == JobState.PREVIEW:
            _start(job, actor=actor, source=source)
            return job, True
        if job.state == JobState.FAILED:
            job.state, job.attempts, job.last_error, job.lease_owner, job.lease_until = (
                JobState.QUEUED,
                0,
                "",
                "",
                None,
            )
            job.save(
                update_fields=["state", "attempts", "last_error", "lease_owner", "lease_until"]
            )
            audit.record(
                actor=actor,
                action="remediation.resume",
                obj=job,
                after={"processed": job.processed, "total": job.total},
                reason=job.reason,
                source=source,
            )
            _enqueue(job)
            return job, True
    return job, False


def _start(job: Job, *, actor, source: str) -> None:
    """Write the selection down as items and queue the job (inside the caller's transaction)."""
    at = now()
    rows = (
        selection.orders_for(job.selector)
        .order_by("pk")
        .values_list("pk", "number", "user_id", "email", "language", "status")
    )
    items, total = [], 0
    for pk, number, user_id, email, language, status in rows.iterator(chunk_size=ITEM_BATCH):
        key = f"user:{user_id}" if user_id else f"email:{email.strip().lower()}"
        items.append(
            Item(
                job=job,
                order_id=pk,
                order_number=number,
                customer_key=key,
                email=email,
                language=language or "de",
                status_before=status,
            )
        )
        if len(items) >= ITEM_BATCH:
            Item.objects.bulk_create(items)
            total += len(items)
            items = []
    if items:
        Item.objects.bulk_create(items)
        total += len(items)
    job.total = total
    job.state, job.phase, job.dry_run = JobState.QUEUED, Phase.ORDERS, False
    job.executed_by = actor if getattr(actor, "pk", None) else None
    job.executed_at = at
    affected = (
        selection.count_customers(
            selection.affected_orders(selection.orders_for(job.selector), job.actions)
        )
        if job.actions.get("notify")
        else 0
    )
    job.customers_total = affected  # an estimate until the orders phase is through
    if job.actions.get("goodwill_amount"):
        _goodwill_checks(job, affected)
        job.goodwill_campaign = goodwill.make_campaign(
            job=job,
            amount=Decimal(job.actions["goodwill_amount"]),
            customers=affected,
            approver=job.executed_by,
        )
        audit.record(
            actor=actor,
            action="campaign.create",
            obj=job.goodwill_campaign,
            after={
                "goodwill_of": job.pk,
                "amount": job.actions["goodwill_amount"],
                "customers": affected,
            },
            reason=job.reason,
            source=source,
        )
        audit.record(
            actor=actor,
            action="campaign.approve",
            obj=job.goodwill_campaign,
            after={"status": "approved", "created_by": job.created_by_id},
            reason=f"goodwill of remediation #{job.pk}: previewed by {job.created_by.email if job.created_by else 'the system'}, executed by {actor.email}",
            source=source,
        )
    job.save()
    audit.record(
        actor=actor,
        action="remediation.execute",
        obj=job,
        after={"total": total, "actions": job.actions},
        reason=job.reason,
        source=source,
    )
    _enqueue(job)


def _goodwill_checks(job: Job, affected: int) -> None:
    """A goodwill voucher is money given away: its campaign is approved by the person who
    executes the job, who must not be the one who prepared it (four eyes), and it may not
    become larger than what the preview they looked at said."""
    if job.executed_by is None:
        raise ValidationFailed(
            "A goodwill voucher needs a staff member who executes the job (it approves its small campaign).",
            code="actor_required",
        )
    if job.created_by_id == job.executed_by.pk:
        raise goodwill.four_eyes_refusal()
    shown = (job.preview.get("affected") or {}).get("customers")
    if shown is not None and affected > shown:
        fresh = selection.preview(job.selector, job.actions)
        err = Conflict(
            f"Since the preview, the selection has grown to {affected} affected customers (the preview said {shown}). "
            "The preview is updated: look at it again, then execute.",
            code="preview_outdated",
            preview=fresh,
        )
        job_id = job.pk
        err.after_rollback.append(
            lambda: Job.objects.filter(pk=job_id, state=JobState.PREVIEW).update(preview=fresh)
        )
        raise err


def _enqueue(job: Job) -> None:
    """Queue the job's task in the caller's transaction (the database task backend writes the
    task row there: the job and its task commit or roll back together)."""
    from .tasks import run_remediation

    run_remediation.enqueue(job.pk)


def _enqueue_now(task, job_id) -> None:
    try:
        task.enqueue(job_id)
    except Exception:  # the sweep picks a queued job up anyway
        log.exception("could not enqueue remediation #%s; the worker's sweep will", job_id)


# --- working a job off ------------------------------------------------------------------------


def _claim(job_id: int, owner: str) -> bool:
    at = now()
    lease = at + timedelta(seconds=settings.REMEDIATION_LEASE_SECONDS)
    from django.db.models import Q

    free = (
        Q(state=JobState.QUEUED)
        | Q(state=JobState.RUNNING, lease_until__lt=at)
        | Q(state=JobState.RUNNING, lease_owner="")
    )
    n = Job.objects.filter(free, pk=job_id).update(
        state=JobState.RUNNING, lease_owner=owner, lease_until=lease, attempts=F("attempts") + 1
    )
    if n:
        Job.objects.filter(pk=job_id, started_at__isnull=True).update(started_at=at)
    return bool(n)


def _renew(job_id: int, owner: str, **counters) -> None:
    """Inside a chunk's transaction: keep the lease (or find it lost) and add to the counters."""
    updates = {k: F(k) + v for k, v in counters.items() if v}
    if counters.get("processed") or counters.get("customers_done"):
        updates["attempts"] = 1  # progress: the failures counted are those in a row
    n = Job.objects.filter(pk=job_id, lease_owner=owner).update(
        lease_until=now() + timedelta(seconds=settings.REMEDIATION_LEASE_SECONDS), **updates
    )
    if n != 1:
        raise LeaseLost()


def run(job_id: int, *, owner: str | None = None, progress=None) -> str:
    """Work a job off, if no one else is; returns its state afterwards. ``progress(job)`` is
    called after each chunk (the CLI draws its bar with it)."""
    owner = owner or uuid.uuid4().hex
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return "missing"
    lease_free = job.lease_until is None or job.lease_until < now() or not job.lease_owner
    if (
        job.attempts >= settings.REMEDIATION_MAX_ATTEMPTS
        and job.state in (JobState.QUEUED, JobState.RUNNING)
        and lease_free
    ):
        _fail(job_id, owner=None, error=job.last_error or "too many attempts")
        return JobState.FAILED
    if not _claim(job_id, owner):
        return Job.objects.get(pk=job_id).state
    try:
        job = Job.objects.select_related("goodwill_campaign", "executed_by").get(pk=job_id)
        if job.phase == Phase.ORDERS:
            while _orders_chunk(job, owner):
                _report(job_id, progress)
            Job.objects.filter(pk=job_id, lease_owner=owner).update(
                phase=Phase.CUSTOMERS,
                customers_total=_customers_to_notify(job) if job.actions.get("notify") else 0,
            )
            job.refresh_from_db()
        if job.actions.get("notify"):
            while _customers_chunk(job, owner):
                _report(job_id, progress)
        with transaction.atomic():
            _renew(job_id, owner)
            if job.goodwill_campaign_id:
                _fit_goodwill_campaign(job)
            Job.objects.filter(pk=job_id).update(
                state=JobState.DONE,
                finished_at=now(),
                lease_owner="",
                lease_until=None,
                last_error="",
            )
            job.refresh_from_db()
            audit.record(
                actor=job.executed_by,
                action="remediation.finish",
                obj=job,
                after=counts(job),
                reason=job.reason,
                source=AuditSource.SYSTEM,
            )
        _report(job_id, progress)
        return JobState.DONE
    except LeaseLost:
        log.warning("remediation #%s: lease lost, another runner goes on", job_id)
        return Job.objects.get(pk=job_id).state
    except Exception as err:
        log.exception("remediation #%s failed in a chunk; it will be resumed", job_id)
        # let the lease run out at once, so the sweep resumes it (up to REMEDIATION_MAX_ATTEMPTS)
        Job.objects.filter(pk=job_id, lease_owner=owner).update(
            lease_until=now(), last_error=f"{type(err).__name__}: {err}"[:2000]
        )
        job = Job.objects.get(pk=job_id)
        if job.attempts >= settings.REMEDIATION_MAX_ATTEMPTS:
            _fail(job_id, owner=owner, error=job.last_error)
            return JobState.FAILED
        raise


def _fit_goodwill_campaign(job: Job) -> None:
    """The goodwill campaign's limit and budget become exactly what was issued."""
    from warenhaus.promotions.models import Campaign, Code

    issued = Code.objects.filter(campaign_id=job.goodwill_campaign_id).count()
    amount = Decimal(job.actions["goodwill_amount"])
    Campaign.objects.filter(pk=job.goodwill_campaign_id).update(
        total_limit=max(issued, 1), budget=amount * max(issued, 1)
    )


def _fail(job_id: int, *, owner, error: str) -> None:
    qs = Job.objects.filter(pk=job_id)
    if owner:
        qs = qs.filter(lease_owner=owner)
    qs.update(state=JobState.FAILED, lease_owner="", lease_until=None, last_error=error[:2000])
    job = Job.objects.get(pk=job_id)
    audit.record(
        actor=None,
        action="remediation.fail",
        obj=job,
        after={"processed": job.processed, "total": job.total, "error": error[:500]},
        reason=job.reason,
        source=AuditSource.SYSTEM,
    )


def _report(job_id: int, progress) -> None:
    if progress is not None:
        progress(Job.objects.get(pk=job_id))
    if settings.REMEDIATION_CHUNK_PAUSE > 0:
        time.sleep(settings.REMEDIATION_CHUNK_PAUSE)


def _orders_chunk(job: Job, owner: str) -> bool:
    """One chunk of pending items, in one transaction. False when none is left."""
    acts = job.actions
    with transaction.atomic():
        items = list(
            Item.objects.filter(job=job, outcome=Outcome.PENDING)
            .order_by("order_id")
            .values_list("pk", "order_id")[: settings.REMEDIATION_CHUNK]
        )
        if not items:
            _renew(job.pk, owner)
            return False
        order_ids = [oid for _, oid in items]
        action = "cancel" if acts["cancel"] else "hold" if acts["hold"] else None
        if action:
            # the notice replaces the usual cancellation mail: each customer hears once
            result = orders.act_on_many(
                order_ids,
                action=action,
                actor=job.executed_by,
                reason=f"{job.reason} (remediation #{job.pk})",
                source=AuditSource.REMEDIATION,
                mail_customers=not acts["notify"],
            )
            by_order = {oid: OUTCOMES[r] for oid, r in result.items()}
        else:
            from warenhaus.orders.models import Order, OrderStatus

            status = dict(Order.objects.filter(pk__in=order_ids).values_list("pk", "status"))
            told = set(
                Item.objects.filter(order_id__in=order_ids, notified_at__isnull=False)
                .exclude(job=job)
                .values_list("order_id", flat=True)
            )
            by_order = {
                oid: (
                    Outcome.UNCHANGED
                    if status.get(oid) in (OrderStatus.CANCELLED, OrderStatus.REFUNDED)
                    or oid in told
                    else Outcome.NOTED
                )
                for oid in order_ids
            }
        at = now()
        grouped: dict[str, list[int]] = {}
        for pk, oid in items:
            grouped.setdefault(by_order.get(oid, Outcome.UNCHANGED), []).append(pk)
        for outcome, pks in grouped.items():
            Item.objects.filter(pk__in=pks, outcome=Outcome.PENDING).update(
                outcome=outcome, processed_at=at
            )
        _renew(
            job.pk, owner, processed=len(items), **{COUNTERS[o]: len(p) for o, p in grouped.items()}
        )
    return True


def _customers_to_notify(job: Job) -> int:
    return (
        Item.objects.filter(job=job, outcome__in=AFFECTED).values("customer_key").distinct().count()
    )


def _customers_chunk(job: Job, owner: str) -> bool:
    """Notice (and goodwill code) for one chunk of customers not yet notified."""
    from warenhaus.notifications.services import enqueue_mails

    chunk = max(1, settings.REMEDIATION_CHUNK // 2)
    with transaction.atomic():
        keys = list(
            Item.objects.filter(job=job, outcome__in=AFFECTED, notified_at__isnull=True)
            .values_list("customer_key", flat=True)
            .order_by("customer_key")
            .distinct()[:chunk]
        )
        if not keys:
            _renew(job.pk, owner)
            return False
        rows = list(
            Item.objects.filter(job=job, customer_key__in=keys, outcome__in=AFFECTED)
            .order_by("customer_key", "order_id")
            .values("customer_key", "order_number", "outcome", "email", "language", "order_id")
        )
        names = _names([r["order_id"] for r in rows])
        per_customer: dict[str, list[dict]] = {}
        for r in rows:
            per_customer.setdefault(r["customer_key"], []).append(r)
        campaign = job.goodwill_campaign
        issued = 0
        if campaign is not None:
            from warenhaus.promotions.models import Code

            fresh = [goodwill.code_row(campaign, goodwill.code_for(job.pk, key)) for key in keys]
            existing = set(
                Code.objects.filter(digest__in=[c.digest for c in fresh]).values_list(
                    "digest", flat=True
                )
            )
            new = [c for c in fresh if c.digest not in existing]
            Code.objects.bulk_create(new)
            issued = len(new)
        mails = []
        for key in keys:
            mine = per_customer[key]
            last = mine[-1]  # the most recent order's address and language
            mails.append(
                {
                    "kind": "remediation_notice",
                    "to_email": last["email"],
                    "template": "remediation_notice",
                    "language": last["language"],
                    "context": {
                        "job": job,
                        "customer_key": key,
                        "with_goodwill": campaign is not None,
                        "name": names.get(last["order_id"], ""),
                        "orders": [
                            {"number": r["order_number"], "outcome": r["outcome"]} for r in mine
                        ],
                    },
                    "dedupe_key": f"remediation:{job.pk}:{hashlib.sha256(key.encode()).hexdigest()[:40]}",
                    "related_object": f"remediation:{job.pk}",
                }
            )
        sent = enqueue_mails(mails)
        Item.objects.filter(job=job, customer_key__in=keys, notified_at__isnull=True).update(
            notified_at=now()
        )
        _renew(job.pk, owner, customers_done=len(keys), notified=sent, vouchers_issued=issued)
    return True


def _names(order_ids) -> dict[int, str]:
    from warenhaus.orders.models import Order

    return {
        pk: (addr or {}).get("name", "")
        for pk, addr in Order.objects.filter(pk__in=order_ids).values_list("pk", "shipping_address")
    }


def recover_stalled() -> int:
    """The worker's sweep: queue again every job whose runner stopped renewing its lease, and
    every queued job nobody has started for a lease's length (its task was lost). Returns how
    many were queued. Queuing a job twice is harmless: only one runner can claim it."""
    from django.db.models import Q

    from .tasks import run_remediation

    at = now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=at)
    stalled = Q(state=JobState.RUNNING, lease_until__lt=at) | (
        Q(
            state=JobState.QUEUED,
            executed_at__lt=at - timedelta(seconds=settings.REMEDIATION_LEASE_SECONDS),
        )
        & free
    )
    n = 0
    for job_id in Job.objects.filter(stalled).values_list("pk", flat=True):
        # push the lease a little into the future so that the next sweep does not queue it again
        hold_off = now() + timedelta(seconds=settings.REMEDIATION_LEASE_SECONDS)
        if Job.objects.filter(
            free, pk=job_id, state__in=[JobState.QUEUED, JobState.RUNNING]
        ).update(lease_owner="", lease_until=hold_off):
            _enqueue_now(run_remediation, job_id)
            n += 1
    return n


# --- reading ----------------------------------------------------------------------------------


def counts(job: Job) -> dict:
    return {
        k: getattr(job, k)
        for k in (
            "total",
            "processed",
            "cancelled",
            "held",
            "noted",
            "out_of_reach",
            "unchanged",
            "customers_total",
            "customers_done",
            "notified",
            "vouchers_issued",
        )
    }
