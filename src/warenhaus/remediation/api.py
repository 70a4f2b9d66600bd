"""Remediation over the API (staff): preview, execute, follow, export."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from ninja import Header, Router, Schema
from pydantic import Field

from warenhaus.core.apiutil import Limit, paginate, require
from warenhaus.core.idempotency import run_idempotent, validate_key

from . import selectors, services
from .models import Item, Job

router = Router(tags=["remediation"])


class JobIn(Schema):
    selector: dict = Field(
        description='{"voucher_codes": [...], "campaigns": [ids], "placed_from": ..., "placed_to": ...}, or {"sku": ..., "unit_price_below": "100.00"}, or {"order_numbers": [...]}'
    )
    actions: list | dict = Field(
        description='e.g. ["cancel", "notify", {"goodwill_voucher": {"amount": "10.00"}}]; cancel or hold, notify, goodwill_voucher'
    )
    dry_run: bool = Field(
        default=True, description="true: only the preview; false: execute at once"
    )
    reason: str = Field(
        default="", max_length=2000, description="why (order history and audit trail)"
    )
    customer_note: str = Field(
        default="", max_length=2000, description="a sentence added to the customers' apology"
    )


@router.post(
    "/remediations",
    response={201: dict},
    summary="Make a remediation job with its preview (needs an Idempotency-Key); dry_run false executes it at once",
)
def create(
    request,
    payload: JobIn,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
):
    user = require(request, "remediation.preview" if payload.dry_run else "remediation.run")
    key = validate_key(idempotency_key)

    def work():
        job = services.create_job(
            actor=user,
            selector=payload.selector,
            actions=payload.actions,
            dry_run=payload.dry_run,
            reason=payload.reason,
            customer_note=payload.customer_note,
        )
        return 201, selectors.job_json(services.get_job(job.pk))

    return run_idempotent(
        scope=f"remediation:{user.pk}", key=key, payload=payload.model_dump(), work=work
    )


@router.get("/remediations", response={200: dict}, summary="Remediation jobs, newest first")
def list_jobs(request, limit: Limit = 20, cursor: str | None = None, state: str = ""):
    require(request, "remediation.preview")
    qs = Job.objects.select_related("created_by", "executed_by")
    if state:
        qs = qs.filter(state=state[:10])
    return 200, paginate(qs, limit=limit, cursor=cursor, descending=True, render=selectors.job_json)


@router.get(
    "/remediations/{job_id}",
    response={200: dict},
    summary="One job: state, progress, counts, preview",
)
def get(request, job_id: str):
    require(request, "remediation.preview")
    return 200, selectors.job_json(services.get_job(job_id))


@router.post(
    "/remediations/{job_id}/execute",
    response={200: dict, 202: dict},
    summary="Execute a previewed job (or resume a failed one); executing again changes nothing",
)
def execute(request, job_id: str):
    user = require(request, "remediation.run")
    job, _started = services.execute(job_id=job_id, actor=user)
    job = services.get_job(job.pk)
    return (200 if job.state == "done" else 202), selectors.job_json(job)


@router.get(
    "/remediations/{job_id}/items",
    response={200: dict},
    summary="The job's orders with what was done to each",
)
def items(request, job_id: str, limit: Limit = 20, cursor: str | None = None, outcome: str = ""):
    require(request, "remediation.preview")
    job = services.get_job(job_id)
    qs = Item.objects.filter(job=job)
    if outcome:
        qs = qs.filter(outcome=outcome[:15])
    return 200, paginate(qs, limit=limit, cursor=cursor, render=selectors.item_json)


@router.get("/remediations/{job_id}/export.csv", summary="The job's orders and outcomes as CSV")
def export(request, job_id: str):
    require(request, "remediation.preview")
    job = services.get_job(job_id)
    response = StreamingHttpResponse(
        selectors.csv_rows(job), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="remediation-{job.pk}.csv"'
    return response
