"""Reading remediation jobs: their JSON, their items, and the CSV export."""

from __future__ import annotations

import io
from collections.abc import Iterator

from warenhaus.core import csvsafe

from .models import Item, Job, JobState


def _iso(dt):
    return dt.isoformat() if dt is not None else None


def job_json(job: Job) -> dict:
    from .services import counts

    return {
        "id": job.pk,
        "state": job.state,
        "phase": job.phase,
        "dry_run": job.dry_run,
        "reason": job.reason,
        "customer_note": job.customer_note,
        "selector": job.selector,
        "actions": job.actions,
        "preview": job.preview,
        "progress": {
            "total": job.total + job.customers_total,
            "done": job.processed + job.customers_done,
            "percent": job.percent,
            "orders_total": job.total,
            "orders_done": job.processed,
            "customers_total": job.customers_total,
            "customers_done": job.customers_done,
        },
        "counts": counts(job),
        "goodwill_campaign": job.goodwill_campaign_id,
        "created_by": job.created_by.email if job.created_by_id else None,
        "created_at": _iso(job.created_at),
        "executed_by": job.executed_by.email if job.executed_by_id else None,
        "executed_at": _iso(job.executed_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "attempts": job.attempts,
        "last_error": job.last_error or None,
        "export": f"/api/v1/remediations/{job.pk}/export.csv"
        if job.state != JobState.PREVIEW
        else None,
    }


def item_json(item: Item) -> dict:
    return {
        "order": item.order_number,
        "customer": item.email,
        "status_before": item.status_before,
        "outcome": item.outcome,
        "processed_at": _iso(item.processed_at),
        "notified_at": _iso(item.notified_at),
    }


CSV_HEADER = [
    "order",
    "placed_at",
    "customer",
    "email",
    "status_before",
    "outcome",
    "total",
    "discount",
    "processed_at",
    "notified_at",
    "goodwill_code",
]


def csv_rows(job: Job) -> Iterator[str]:
    """The job's items as CSV lines (header first), streamed in batches, every cell safe for
    spreadsheets (:mod:`warenhaus.core.csvsafe`). The goodwill column shows only the code's last
    characters: codes are for their owners' mailboxes."""
    from warenhaus.orders.models import Order
    from warenhaus.promotions import codes as codelib

    from . import goodwill

    buf = io.StringIO()
    writer = csvsafe.writer(buf)

    def flush() -> str:
        out = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return out

    writer.writerow(CSV_HEADER)
    yield flush()
    last = 0
    while True:
        batch = list(Item.objects.filter(job=job, pk__gt=last).order_by("pk")[:2000])
        if not batch:
            return
        last = batch[-1].pk
        orders = {
            o["pk"]: o
            for o in Order.objects.filter(pk__in=[i.order_id for i in batch]).values(
                "pk", "placed_at", "total", "discount"
            )
        }
        for i in batch:
            o = orders.get(i.order_id, {})
            hint = ""
            if job.goodwill_campaign_id and i.notified_at:
                hint = "…" + codelib.hint(goodwill.code_for(job.pk, i.customer_key))
            writer.writerow(
                [
                    i.order_number,
                    _iso(o.get("placed_at")),
                    i.customer_key,
                    i.email,
                    i.status_before,
                    i.outcome,
                    o.get("total", ""),
                    o.get("discount", ""),
                    _iso(i.processed_at),
                    _iso(i.notified_at),
                    hint,
                ]
            )
        yield flush()
