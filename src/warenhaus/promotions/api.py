"""Promotions over the API (staff): campaigns with four-eyes approval, codes, the kill switch,
redemptions and (filled by the leak monitors) alerts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.conf import settings
from ninja import Header, Schema
from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    create_model,
)

from warenhaus.core.apiutil import AUTH, ApiRouter, Limit, paginate, require, whole_number
from warenhaus.core.idempotency import run_idempotent, validate_key
from warenhaus.core.schemas import (
    MoneyIn,
    MoneyOut,
    Out,
    Page,
    Percent,
    PositiveDecimal,
    PositiveMoneyIn,
    Reason,
    Text,
    UtcDateTime,
    matching,
    problems,
)

from . import editing, selectors, services
from .models import Alert, Campaign
from .monitors import MONITORS
from .services import COUNT_MAX

router = ApiRouter(tags=["promotions"])

TotalLimit = whole_number(1, COUNT_MAX["total_limit"])
PerCustomerLimit = whole_number(1, COUNT_MAX["per_customer_limit"])
PerHour = whole_number(1, COUNT_MAX["expected_redemptions_per_hour"])
MaxUses = whole_number(1, COUNT_MAX["max_uses_per_code"])
Channel = Literal["web", "phone", "api"]
DiscountKind = Literal["fixed", "percent"]
Eligibility = Literal["any", "registered", "new"]
Stacking = Literal["exclusive", "stackable"]
CodeMode = Literal["public", "unique"]
BlockPattern = matching(
    r"[A-Za-z0-9]{4,32}\*",
    code="invalid_pattern",
    message="A pattern is at least 4 letters or digits followed by '*', e.g. SOMMER*.",
    max_length=33,
)
Threshold = (
    Annotated[StrictInt, Field(ge=0, le=1_000_000)]
    | Annotated[StrictFloat, Field(ge=0, le=1_000_000)]
)


def _monitor_schema(monitor) -> type[Schema]:
    """One leak monitor's settings: ``enabled`` and its own thresholds, nothing else."""
    fields: dict[str, Any] = {"enabled": (StrictBool | None, None)}
    fields.update({key: (Threshold | None, None) for key in monitor.defaults})
    return create_model(
        f"{monitor.name.title().replace('_', '')}MonitorIn",
        __config__=ConfigDict(extra="forbid"),
        **fields,
    )


MonitorSettingsIn = create_model(
    "MonitorSettingsIn",
    __config__=ConfigDict(extra="forbid"),
    **{m.name: (_monitor_schema(m) | None, None) for m in MONITORS},
)
CodeCount = whole_number(1, settings.VOUCHER_MAX_CODES_PER_CALL, code="invalid_count")


class CampaignIn(Schema):
    name: Text = Field(max_length=200)
    purpose: str = Field(default="", max_length=4000)
    discount_kind: DiscountKind = Field(description='"fixed" (EUR) or "percent"')
    discount_value: PositiveDecimal = Field(
        description='a decimal string: "10.00" EUR (fixed) or "15" percent'
    )
    discount_cap: PositiveMoneyIn | None = Field(
        default=None, description="largest amount of a percent discount"
    )
    min_basket: MoneyIn | None = None
    max_share: Percent | None = Field(
        default=None,
        description="largest share (percent) of the basket the discount may take; default 50",
    )
    eligible_categories: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="category slugs (with their sub-categories); empty: all",
    )
    eligible_products: list[str] = Field(
        default_factory=list, max_length=1000, description="product slugs; empty: all"
    )
    customer_eligibility: Eligibility = Field(
        default="any", description="any, registered or new (first order)"
    )
    channels: list[Channel] = Field(
        default_factory=lambda: ["web", "phone", "api"], min_length=1, max_length=3
    )
    valid_from: UtcDateTime | None = None
    valid_until: UtcDateTime | None = None
    total_limit: TotalLimit | None = None
    per_customer_limit: PerCustomerLimit | None = None
    budget: PositiveMoneyIn | None = None
    stacking: Stacking = "exclusive"
    code_mode: CodeMode = Field(
        description='"public" (one code, give public_code) or "unique" (generated or imported codes)'
    )
    public_code: str = Field(
        default="",
        max_length=64,
        description="code_mode public: 4 to 32 letters and digits (not the shape of a generated "
        "code); otherwise empty",
    )
    release_redemption_on_cancel: bool = True
    expected_redemptions_per_hour: PerHour | None = None
    auto_pause: bool = True
    monitor_settings: MonitorSettingsIn | None = Field(
        default=None,
        description='per-monitor thresholds, e.g. {"rate": {"factor": 3, "floor": 10}}; missing keys take the defaults',
    )


class CampaignPatch(Schema):
    """The fields to change (others stay); ``null`` clears an optional one."""

    name: Text | None = Field(default=None, max_length=200)
    purpose: str | None = Field(default=None, max_length=4000)
    discount_kind: DiscountKind | None = None
    discount_value: PositiveDecimal | None = None
    discount_cap: PositiveMoneyIn | None = None
    min_basket: MoneyIn | None = None
    max_share: Percent | None = None
    eligible_categories: list[str] | None = Field(default=None, max_length=200)
    eligible_products: list[str] | None = Field(default=None, max_length=1000)
    customer_eligibility: Eligibility | None = None
    channels: list[Channel] | None = Field(default=None, min_length=1, max_length=3)
    valid_from: UtcDateTime | None = None
    valid_until: UtcDateTime | None = None
    total_limit: TotalLimit | None = None
    per_customer_limit: PerCustomerLimit | None = None
    budget: PositiveMoneyIn | None = None
    stacking: Stacking | None = None
    code_mode: CodeMode | None = None
    public_code: str | None = Field(default=None, max_length=64)
    release_redemption_on_cancel: bool | None = None
    expected_redemptions_per_hour: PerHour | None = None
    auto_pause: bool | None = None
    monitor_settings: MonitorSettingsIn | None = None


class ApproveIn(Schema):
    override_reason: str = Field(
        default="", max_length=2000, description="needed to approve a dangerous shape"
    )


class ReasonIn(Schema):
    reason: Reason


class OptionalReasonIn(Schema):
    reason: str = Field(default="", max_length=2000)


class CountIn(Schema):
    count: CodeCount


class ImportIn(Schema):
    """Codes as a list, or a CSV file's text: one of them with at least one code."""

    codes: list[str] = Field(default_factory=list, max_length=10000)
    csv: str = Field(
        default="",
        max_length=60_000,
        description="instead of codes: a CSV file's text, codes in the first column",
    )
    max_uses_per_code: MaxUses | None = Field(
        default=1,
        description="null: only the campaign's limits apply; anything but 1 only in a draft (409 codes_widen_campaign once approved)",
    )


class PatternIn(Schema):
    pattern: BlockPattern = Field(description="a prefix and '*', e.g. SOMMER*")
    reason: Reason


_MONEY_FIELDS = ("discount_cap", "min_basket", "budget")


def _service_fields(payload: Schema, **kw) -> dict:
    """The payload as the services take it: money as its decimal string."""
    fields = payload.model_dump(**kw)
    if fields.get("monitor_settings") is not None:
        fields["monitor_settings"] = payload.monitor_settings.model_dump(exclude_none=True)
    for name in _MONEY_FIELDS:
        if fields.get(name) is not None:
            fields[name] = getattr(payload, name).amount
    return fields


class DiscountOut(Out):
    kind: str
    value: str = Field(description="EUR (fixed) or percent, a decimal string")
    cap: MoneyOut | None


class WorstCaseOut(Out):
    amount: MoneyOut | None
    unbounded: bool
    per_redemption: MoneyOut | None
    total_limit: int | None
    budget: MoneyOut | None


class CampaignOut(Out):
    """A campaign (``dangers``, ``took_part`` and ``codes`` on the campaign itself, not in
    lists)."""

    id: int
    name: str
    purpose: str
    status: str
    status_reason: str
    discount: DiscountOut
    min_basket: MoneyOut
    max_share: str
    eligible_category_ids: list[int]
    eligible_product_ids: list[int]
    customer_eligibility: str
    channels: list[str]
    valid_from: str | None
    valid_until: str | None
    total_limit: int | None
    per_customer_limit: int | None
    budget: MoneyOut | None
    stacking: str
    code_mode: str
    release_redemption_on_cancel: bool
    expected_redemptions_per_hour: int | None
    auto_pause: bool
    monitors: dict[str, dict[str, Any]]
    redeemed_count: int
    spent: MoneyOut
    created_by: str | None
    approved_by: str | None
    approved_at: str | None
    approval_override_reason: str
    worst_case: WorstCaseOut
    dangers: list[dict[str, Any]] | None = None
    took_part: list[dict[str, Any]] | None = None
    codes: dict[str, Any] | None = None


class RedemptionOut(Out):
    id: int
    order: str
    code_hint: str
    customer_key: str
    amount: MoneyOut
    basket_value: MoneyOut
    channel: str
    client_ip: str | None
    new_account: bool
    guest: bool
    created_at: str
    released_at: str | None


class AlertOut(Out):
    id: int
    campaign: int
    monitor: str
    measured: float
    threshold: float
    peak: float
    window_seconds: int
    message: str
    message_de: str
    paused_campaign: bool
    created_at: str
    last_seen_at: str | None
    resolved_at: str | None
    acknowledged_by: str | None
    acknowledged_at: str | None


class CodesOut(Out):
    batch: int
    campaign: int
    count: int
    codes: list[str] | None = Field(description="shown once, in the first answer")
    codes_withheld: str | None


class ImportOut(Out):
    batch: int | None
    imported: int
    rejected: list[dict[str, Any]]


class BlockedCodeOut(Out):
    code_hint: str
    campaign: int
    status: str
    reason: str


class BlockedPatternOut(Out):
    rule: int
    pattern: str
    blocked: int


def _json(c):
    return selectors.campaign_json(selectors.campaign_by_id(c.pk))


@router.post(
    "/campaigns",
    response={201: CampaignOut, **problems(409, auth=True)},
    openapi_extra=AUTH,
    summary="Make a campaign (always a draft until someone else approves it)",
)
def create_campaign(request, payload: CampaignIn):
    user = require(request, "promotions.edit")
    c = services.create_campaign(actor=user, **_service_fields(payload))
    return 201, _json(c)


@router.get(
    "/campaigns",
    response={200: Page[CampaignOut], **problems(auth=True)},
    openapi_extra=AUTH,
    summary="Campaigns, newest first",
)
def list_campaigns(request, limit: Limit = 20, cursor: str | None = None, status: str = ""):
    require(request, "promotions.view")
    qs = Campaign.objects.select_related("created_by", "approved_by")
    if status:
        qs = qs.filter(status=status[:10])
    return 200, paginate(
        qs,
        limit=limit,
        cursor=cursor,
        descending=True,
        render=lambda c: selectors.campaign_json(c, detail=False),
    )


@router.get(
    "/campaigns/{campaign_id}",
    response={200: CampaignOut, **problems(404, auth=True)},
    openapi_extra=AUTH,
    summary="One campaign with its worst-case cost and dangerous shapes",
)
def get_campaign(request, campaign_id: str):
    require(request, "promotions.view")
    return 200, selectors.campaign_json(selectors.campaign_by_id(campaign_id))


@router.patch(
    "/campaigns/{campaign_id}",
    response={200: CampaignOut, **problems(404, 409, auth=True)},
    openapi_extra=AUTH,
    summary="Edit a draft (anything else: 409 campaign_not_editable); the editor may not approve it",
)
def edit_campaign(request, campaign_id: str, payload: CampaignPatch):
    user = require(request, "promotions.edit")
    return 200, _json(
        editing.update_campaign(
            campaign_id=campaign_id,
            actor=user,
            changes=_service_fields(payload, exclude_unset=True),
        )
    )


@router.post(
    "/campaigns/{campaign_id}/approve",
    response={200: CampaignOut, **problems(404, 409, auth=True)},
    openapi_extra=AUTH,
    summary="Approve (four eyes: not by anyone who made or edited it; dangerous shapes need override_reason)",
)
def approve(request, campaign_id: str, payload: ApproveIn):
    user = require(request, "promotions.approve")
    return 200, _json(
        services.approve_campaign(
            campaign_id=campaign_id, actor=user, override_reason=payload.override_reason
        )
    )


@router.post(
    "/campaigns/{campaign_id}/pause",
    response={200: CampaignOut, **problems(404, 409, auth=True)},
    openapi_extra=AUTH,
    summary="Pause: codes stop redeeming with the next request",
)
def pause(request, campaign_id: str, payload: ReasonIn):
    user = require(request, "promotions.block")
    return 200, _json(
        services.pause_campaign(campaign_id=campaign_id, actor=user, reason=payload.reason)
    )


@router.post(
    "/campaigns/{campaign_id}/resume",
    response={200: CampaignOut, **problems(404, 409, auth=True)},
    openapi_extra=AUTH,
    summary="Resume a paused campaign (approvers)",
)
def resume(request, campaign_id: str, payload: OptionalReasonIn):
    user = require(request, "promotions.approve")
    return 200, _json(
        services.resume_campaign(campaign_id=campaign_id, actor=user, reason=payload.reason)
    )


@router.post(
    "/campaigns/{campaign_id}/revoke",
    response={200: CampaignOut, **problems(404, 409, auth=True)},
    openapi_extra=AUTH,
    summary="Revoke for good",
)
def revoke(request, campaign_id: str, payload: ReasonIn):
    user = require(request, "promotions.block")
    return 200, _json(
        services.revoke_campaign(campaign_id=campaign_id, actor=user, reason=payload.reason)
    )


@router.post(
    "/campaigns/{campaign_id}/codes",
    response={201: CodesOut, **problems(404, 409, auth=True)},
    openapi_extra=AUTH,
    summary="Generate unique single-use codes (shown once; needs an Idempotency-Key)",
)
def generate_codes(
    request,
    campaign_id: str,
    payload: CountIn,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
):
    user = require(request, "promotions.edit")
    key = validate_key(idempotency_key)
    shown: list[str] = []

    def work():
        batch, codes = services.generate_codes(
            campaign_id=campaign_id, actor=user, count=payload.count
        )
        shown.extend(codes)
        # What is remembered for a replay of the key: the batch without its codes, so that
        # the database never holds them. A replay says so instead of making a second batch.
        return 201, {
            "batch": batch.pk,
            "campaign": batch.campaign_id,
            "count": batch.count,
            "codes": None,
            "codes_withheld": "Codes are shown only once, in the first answer.",
        }

    status, body = run_idempotent(
        scope=f"codes:{campaign_id}:{user.pk}", key=key, payload=payload.model_dump(), work=work
    )
    return status, {**body, "codes": shown, "codes_withheld": None}


@router.post(
    "/campaigns/{campaign_id}/codes/import",
    response={201: ImportOut, **problems(404, 409, auth=True)},
    openapi_extra=AUTH,
    summary="Import partner codes (stored as digests only; single-use once the campaign is approved)",
)
def import_codes(request, campaign_id: str, payload: ImportIn):
    user = require(request, "promotions.edit")
    codes = payload.codes or services.codes_from_csv(payload.csv)
    return 201, services.import_codes(
        campaign_id=campaign_id,
        actor=user,
        codes=codes,
        max_uses_per_code=payload.max_uses_per_code,
    )


@router.get(
    "/campaigns/{campaign_id}/redemptions",
    response={200: Page[RedemptionOut], **problems(404, auth=True)},
    openapi_extra=AUTH,
    summary="Redemptions, newest first",
)
def redemptions(request, campaign_id: str, limit: Limit = 20, cursor: str | None = None):
    require(request, "promotions.view")
    c = selectors.campaign_by_id(campaign_id)
    return 200, paginate(
        selectors.redemptions_of(c),
        limit=limit,
        cursor=cursor,
        descending=True,
        render=selectors.redemption_json,
    )


@router.get(
    "/campaigns/{campaign_id}/alerts",
    response={200: Page[AlertOut], **problems(404, auth=True)},
    openapi_extra=AUTH,
    summary="Alerts of the leak monitors, newest first (one per incident)",
)
def alerts(request, campaign_id: str, limit: Limit = 20, cursor: str | None = None):
    require(request, "promotions.view")
    c = selectors.campaign_by_id(campaign_id)
    return 200, paginate(
        Alert.objects.filter(campaign=c).select_related("acknowledged_by"),
        limit=limit,
        cursor=cursor,
        descending=True,
        render=selectors.alert_json,
    )


@router.get(
    "/alerts",
    response={200: Page[AlertOut], **problems(auth=True)},
    openapi_extra=AUTH,
    summary="Alerts of all campaigns, newest first; open=true: incidents still going on, acknowledged=false: nobody has looked yet",
)
def all_alerts(
    request,
    open: bool | None = None,
    acknowledged: bool | None = None,
    limit: Limit = 20,
    cursor: str | None = None,
):
    require(request, "promotions.view")
    return 200, paginate(
        selectors.alerts(open=open, acknowledged=acknowledged),
        limit=limit,
        cursor=cursor,
        descending=True,
        render=selectors.alert_json,
    )


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response={200: AlertOut, **problems(404, auth=True)},
    openapi_extra=AUTH,
    summary="Acknowledge an alert: someone has looked at it (audited; repeating it changes nothing)",
)
def acknowledge_alert(request, alert_id: str):
    user = require(request, "promotions.block")
    return 200, selectors.alert_json(services.acknowledge_alert(alert_id=alert_id, actor=user))


@router.post(
    "/codes/{code}/block",
    response={200: BlockedCodeOut, **problems(404, 409, auth=True)},
    openapi_extra=AUTH,
    summary="Block one code (effective for the next request)",
)
def block_code(request, code: str, payload: ReasonIn):
    user = require(request, "promotions.block")
    row = services.block_code(code=code, actor=user, reason=payload.reason)
    return 200, {
        "code_hint": row.display_hint,
        "campaign": row.campaign_id,
        "status": row.status,
        "reason": row.blocked_reason,
    }


@router.post(
    "/codes/block-pattern",
    response={200: BlockedPatternOut, **problems(auth=True)},
    openapi_extra=AUTH,
    summary="Block every code starting with a prefix (SOMMER*), now and when typed later",
)
def block_pattern(request, payload: PatternIn):
    user = require(request, "promotions.block")
    return 200, services.block_pattern(pattern=payload.pattern, actor=user, reason=payload.reason)
