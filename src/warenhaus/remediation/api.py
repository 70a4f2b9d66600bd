"""Remediation over the API (staff): preview, execute, follow, export."""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from ninja import Header, Schema
from pydantic import ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from warenhaus.core.apiutil import AUTH, ApiRouter, Limit, paginate, require, whole_number
from warenhaus.core.errors import ValidationFailed
from warenhaus.core.idempotency import run_idempotent, validate_key
from warenhaus.core.schemas import MONEY_SHAPE, Out, Page, PositiveMoney, PositiveMoneyIn, problems

from . import selectors, services
from .models import Item, Job

router = ApiRouter(tags=["remediation"])


CampaignId = whole_number(1, 2**63 - 1)


class SelectorIn(Schema):
    """Which orders: by voucher codes or campaigns (optionally within placed_from/placed_to),
    by a SKU sold below a floor, or by order numbers: exactly one of these ways."""

    model_config = ConfigDict(extra="forbid")

    voucher_codes: list[str] | None = Field(default=None, max_length=1000)
    campaigns: list[CampaignId] | None = Field(default=None, max_length=1000)
    placed_from: str | None = Field(default=None, max_length=40)
    placed_to: str | None = Field(default=None, max_length=40)
    sku: str | None = Field(default=None, max_length=64)
    unit_price_below: PositiveMoneyIn | None = None
    order_numbers: list[str] | None = Field(default=None, max_length=100_000)


class JobIn(Schema):
    selector: SelectorIn = Field(
        description='{"voucher_codes": [...], "campaigns": [ids], "placed_from": ..., '
        '"placed_to": ...}, or {"sku": ..., "unit_price_below": {"amount": "100.00", '
        '"currency": "EUR"}}, or {"order_numbers": [...]}'
    )
    actions: list[Any] | dict[str, Any] = Field(
        description='e.g. ["cancel", "notify", {"goodwill_voucher": {"amount": "10.00", '
        '"currency": "EUR"}}]: cancel or hold, notify, goodwill_voucher (a Money); or the same '
        'as an object, {"cancel": true, "goodwill_voucher": {...}}'
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


class JobOut(Out):
    id: int
    state: str
    phase: str
    dry_run: bool
    reason: str
    customer_note: str
    selector: dict[str, Any]
    actions: dict[str, Any]
    preview: dict[str, Any] | None
    progress: dict[str, Any]
    counts: dict[str, Any]
    goodwill_campaign: int | None
    created_by: str | None
    created_at: str
    executed_by: str | None
    executed_at: str | None
    started_at: str | None
    finished_at: str | None
    attempts: int
    last_error: str | None
    export: str | None


class ItemOut(Out):
    order: str
    customer: str
    status_before: str
    outcome: str
    processed_at: str | None
    notified_at: str | None


def _goodwill(params: Any) -> dict:
    """A goodwill voucher's Money as the service takes it (``{"amount": "10.00"}``)."""
    if not isinstance(params, dict):
        raise ValidationFailed(
            f"goodwill_voucher is money, an object {MONEY_SHAPE}.", field="goodwill_voucher"
        )
    try:
        return {"amount": PositiveMoney.model_validate(params).amount}
    except PydanticValidationError as err:
        first = err.errors()[0]
        code = "invalid_money" if first["type"] == "invalid_money" else "validation_error"
        raise ValidationFailed(
            f"goodwill_voucher.{'.'.join(map(str, first['loc']))}: {first['msg']}",
            code=code,
            field="goodwill_voucher",
        ) from None


def _service_actions(actions: list | dict) -> list | dict:
    if isinstance(actions, dict):
        return {
            k: _goodwill(v) if k == "goodwill_voucher" and v not in (False, None) else v
            for k, v in actions.items()
        }
    return [
        {"goodwill_voucher": _goodwill(e["goodwill_voucher"])}
        if isinstance(e, dict) and len(e) == 1 and "goodwill_voucher" in e
        else e
        for e in actions
    ]


def _service_selector(selector: SelectorIn) -> dict:
    raw = selector.model_dump(exclude_unset=True)
    if selector.unit_price_below is not None:
        raw["unit_price_below"] = selector.unit_price_below.amount
    return raw


@router.post(
    "/remediations",
    response={201: JobOut, **problems(404, 409, auth=True)},
    openapi_extra=AUTH,
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
            selector=_service_selector(payload.selector),
            actions=_service_actions(payload.actions),
            dry_run=payload.dry_run,
            reason=payload.reason,
            customer_note=payload.customer_note,
        )
        return 201, selectors.job_json(services.get_job(job.pk))

    return run_idempotent(
        scope=f"remediation:{user.pk}", key=key, payload=payload.model_dump(), work=work
    )


@router.get(
    "/remediations",
    response={200: Page[JobOut], **problems(auth=True)},
    openapi_extra=AUTH,
    summary="Remediation jobs, newest first",
)
def list_jobs(request, limit: Limit = 20, cursor: str | None = None, state: str = ""):
    require(request, "remediation.preview")
    qs = Job.objects.select_related("created_by", "executed_by")
    if state:
        qs = qs.filter(state=state[:10])
    return 200, paginate(qs, limit=limit, cursor=cursor, descending=True, render=selectors.job_json)


@router.get(
    "/remediations/{job_id}",
    response={200: JobOut, **problems(404, auth=True)},
    openapi_extra=AUTH,
    summary="One job: state, progress, counts, preview",
)
def get(request, job_id: str):
    require(request, "remediation.preview")
    return 200, selectors.job_json(services.get_job(job_id))


@router.post(
    "/remediations/{job_id}/execute",
    response={200: JobOut, 202: JobOut, **problems(404, 409, auth=True)},
    openapi_extra=AUTH,
    summary="Execute a previewed job (or resume a failed one); executing again changes nothing",
)
def execute(request, job_id: str):
    user = require(request, "remediation.run")
    job, _started = services.execute(job_id=job_id, actor=user)
    job = services.get_job(job.pk)
    return (200 if job.state == "done" else 202), selectors.job_json(job)


@router.get(
    "/remediations/{job_id}/items",
    response={200: Page[ItemOut], **problems(404, auth=True)},
    openapi_extra=AUTH,
    summary="The job's orders with what was done to each",
)
def items(request, job_id: str, limit: Limit = 20, cursor: str | None = None, outcome: str = ""):
    require(request, "remediation.preview")
    job = services.get_job(job_id)
    qs = Item.objects.filter(job=job)
    if outcome:
        qs = qs.filter(outcome=outcome[:15])
    return 200, paginate(qs, limit=limit, cursor=cursor, render=selectors.item_json)


@router.get(
    "/remediations/{job_id}/export.csv",
    response={200: str, **problems(404, auth=True)},
    openapi_extra={**AUTH, "responses": {"200": {"content": {"text/csv": {}}}}},
    summary="The job's orders and outcomes as CSV",
)
def export(request, job_id: str):
    require(request, "remediation.preview")
    job = services.get_job(job_id)
    response = StreamingHttpResponse(
        selectors.csv_rows(job), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="remediation-{job.pk}.csv"'
    return response
