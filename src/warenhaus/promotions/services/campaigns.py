"""Campaigns: made as drafts, approved by a second person (four eyes), paused, resumed and
revoked, each with its audit entry; what a campaign could cost and which shapes are dangerous."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from warenhaus.accounts.roles import can
from warenhaus.core import audit, signoffs
from warenhaus.core.clock import now
from warenhaus.core.errors import Conflict, Forbidden, ValidationFailed
from warenhaus.core.models import SignoffRole

from .. import selectors
from ..errors import four_eyes_refusal
from ..models import (
    CHANNELS,
    Campaign,
    CampaignSignoff,
    CampaignStatus,
    Code,
    CodeMode,
    CodeSource,
    CodeStatus,
    DiscountKind,
    Eligibility,
    Stacking,
)
from .codes import _code_row, _public_code, _refuse_blocked_pattern
from .common import _count, _locked_campaign, _money, _reason, _snap, _when


def _category_ids(slugs) -> list[int]:
    from warenhaus.catalog.models import Category

    ids: set[int] = set()
    for slug in slugs or []:
        cat = Category.objects.filter(slug=slug).first()
        if cat is None:
            raise ValidationFailed(f"No category '{slug}'.", code="unknown_category", category=slug)
        ids.update(cat.descendant_ids())
    return sorted(ids)


def _product_ids(slugs) -> list[int]:
    from warenhaus.catalog.models import Product

    ids = []
    for slug in slugs or []:
        pk = Product.objects.filter(slug=slug).values_list("pk", flat=True).first()
        if pk is None:
            raise ValidationFailed(f"No product '{slug}'.", code="product_not_found", product=slug)
        ids.append(pk)
    return sorted(set(ids))


def create_campaign(
    *,
    actor,
    name: str,
    discount_kind: str,
    discount_value,
    code_mode: str,
    valid_from=None,
    valid_until=None,
    purpose: str = "",
    discount_cap=None,
    min_basket=None,
    max_share=None,
    eligible_categories=(),
    eligible_products=(),
    customer_eligibility: str = Eligibility.ANY,
    channels=CHANNELS,
    total_limit=None,
    per_customer_limit=None,
    budget=None,
    stacking: str = Stacking.EXCLUSIVE,
    public_code: str = "",
    release_redemption_on_cancel: bool = True,
    expected_redemptions_per_hour=None,
    auto_pause: bool = True,
    monitor_settings=None,
    source: str = "api",
) -> Campaign:
    """A new campaign, always a draft: nothing redeems until someone else approves it."""
    name = (name or "").strip()[:200]
    if not name:
        raise ValidationFailed("A campaign needs a name.", code="validation_error", field="name")
    if discount_kind not in DiscountKind.values:
        raise ValidationFailed(
            "discount_kind is 'fixed' or 'percent'.", code="validation_error", field="discount_kind"
        )
    value = _money(discount_value, "discount_value", allow_zero=False)
    if discount_kind == DiscountKind.PERCENT and value > 100:
        raise ValidationFailed(
            "A percent discount is at most 100.", code="validation_error", field="discount_value"
        )
    cap = _money(discount_cap, "discount_cap", allow_zero=False, optional=True)
    share = _money(max_share, "max_share", allow_zero=False, optional=True) or Decimal("50.00")
    if share > 100:
        raise ValidationFailed(
            "max_share is a percentage between 0 and 100.",
            code="validation_error",
            field="max_share",
        )
    chans = list(dict.fromkeys(channels or []))
    if not chans or any(c not in CHANNELS for c in chans):
        raise ValidationFailed(
            f"channels is a non-empty subset of {', '.join(CHANNELS)}.",
            code="validation_error",
            field="channels",
        )
    if customer_eligibility not in Eligibility.values:
        raise ValidationFailed(
            f"customer_eligibility is one of {', '.join(Eligibility.values)}.",
            code="validation_error",
            field="customer_eligibility",
        )
    if stacking not in Stacking.values:
        raise ValidationFailed(
            "stacking is 'exclusive' or 'stackable'.", code="validation_error", field="stacking"
        )
    if code_mode not in CodeMode.values:
        raise ValidationFailed(
            "code_mode is 'public' (one code) or 'unique' (generated or imported codes).",
            code="validation_error",
            field="code_mode",
        )
    start = _when(valid_from, "valid_from") or now()
    end = _when(valid_until, "valid_until")
    if end is not None and end <= start:
        raise ValidationFailed(
            "valid_until must be after valid_from.", code="validation_error", field="valid_until"
        )
    plain = ""
    if code_mode == CodeMode.PUBLIC:
        plain = _public_code(public_code)
    elif public_code:
        raise ValidationFailed(
            "public_code belongs to code_mode 'public'.",
            code="validation_error",
            field="public_code",
        )
    expected = _count(expected_redemptions_per_hour, "expected_redemptions_per_hour")
    thresholds = validate_monitor_settings(monitor_settings)
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name,
            purpose=(purpose or "").strip()[:4000],
            discount_kind=discount_kind,
            discount_value=value,
            discount_cap=cap,
            min_basket=_money(min_basket, "min_basket"),
            max_share=share,
            eligible_category_ids=_category_ids(eligible_categories),
            eligible_product_ids=_product_ids(eligible_products),
            customer_eligibility=customer_eligibility,
            channels=chans,
            valid_from=start,
            valid_until=end,
            total_limit=_count(total_limit, "total_limit"),
            per_customer_limit=_count(per_customer_limit, "per_customer_limit"),
            budget=_money(budget, "budget", allow_zero=False, optional=True),
            stacking=stacking,
            code_mode=code_mode,
            release_redemption_on_cancel=bool(release_redemption_on_cancel),
            expected_redemptions_per_hour=expected,
            auto_pause=bool(auto_pause),
            monitor_settings=thresholds,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        signoffs.take_part(CampaignSignoff, subject=campaign, user=actor, role=SignoffRole.AUTHOR)
        after = _snap(campaign)
        if plain:
            _refuse_blocked_pattern(plain)
            try:
                with transaction.atomic():
                    code = _code_row(campaign, plain, source=CodeSource.PUBLIC, max_uses=None)
                    code.save()
            except IntegrityError:
                raise Conflict(
                    "This code is already in use by another campaign.", code="code_taken"
                ) from None
            after["public_code_hint"] = code.display_hint
        audit.record(
            actor=actor, action="campaign.create", obj=campaign, after=after, source=source
        )
    return campaign


def worst_case(campaign: Campaign) -> dict:
    """What the campaign could cost at most: limit x largest discount, bounded by the budget.
    ``amount`` is None when nothing bounds it."""
    per = (
        campaign.discount_value
        if campaign.discount_kind == DiscountKind.FIXED
        else campaign.discount_cap
    )
    by_limit = (
        per * campaign.total_limit if per is not None and campaign.total_limit is not None else None
    )
    candidates = [x for x in (by_limit, campaign.budget) if x is not None]
    amount = min(candidates) if candidates else None
    from warenhaus.core.money import money_json

    return {
        "amount": money_json(amount) if amount is not None else None,
        "unbounded": amount is None,
        "per_redemption": money_json(per) if per is not None else None,
        "total_limit": campaign.total_limit,
        "budget": money_json(campaign.budget) if campaign.budget is not None else None,
    }


def dangers(campaign: Campaign) -> list[dict]:
    """Shapes that approval refuses unless an override reason is given."""
    out = []
    public = campaign.code_mode == CodeMode.PUBLIC
    if public and campaign.budget is None:
        out.append(
            {
                "code": "public_code_without_budget",
                "message": "A public code spreads; it needs a money budget.",
            }
        )
    shared = shared_codes(campaign) if not public and campaign.budget is None else 0
    if shared:
        out.append(
            {
                "code": "shared_codes_without_budget",
                "message": f"{shared} of its codes can be used more than once; like a public code they spread, so they need a money budget.",
            }
        )
    if campaign.total_limit is None and campaign.budget is None:
        out.append(
            {
                "code": "unbounded",
                "message": "Neither a total redemption limit nor a budget bounds the cost.",
            }
        )
    safe = settings.VOUCHER_SAFE_SHARE_OF_MIN_BASKET
    if campaign.discount_kind == DiscountKind.FIXED:
        largest = campaign.discount_value
        if largest * 100 > safe * campaign.min_basket:
            out.append(
                {
                    "code": "discount_above_share_of_min_basket",
                    "message": f"{largest:.2f} EUR off a minimum basket of {campaign.min_basket:.2f} EUR is more than {safe:.0f} % of it.",
                }
            )
    elif campaign.discount_value > safe and (
        campaign.discount_cap is None or campaign.discount_cap * 100 > safe * campaign.min_basket
    ):
        out.append(
            {
                "code": "discount_above_share_of_min_basket",
                "message": f"{campaign.discount_value:.0f} % is more than {safe:.0f} % of the basket.",
            }
        )
    if campaign.valid_until is None:
        out.append({"code": "no_end_date", "message": "The campaign has no end date."})
    return out


def shared_codes(campaign: Campaign) -> int:
    """How many of the campaign's active codes redeem more than once."""
    if campaign.pk is None:
        return 0
    return (
        Code.objects.filter(campaign=campaign, status=CodeStatus.ACTIVE)
        .filter(Q(max_uses__isnull=True) | Q(max_uses__gt=1))
        .count()
    )


def approve_campaign(
    *, campaign_id, actor, override_reason: str = "", source: str = "api"
) -> Campaign:
    """Four eyes: a staff member with the approver role who neither made nor edited the draft
    makes it live. The approver's sign-off row is what the database holds this by."""
    if not can(actor, "promotions.approve"):
        raise Forbidden("Only a promotions approver may approve a campaign.", code="forbidden")
    override_reason = _reason(override_reason, required=False)
    with transaction.atomic():
        c = _locked_campaign(campaign_id)
        if c.status != CampaignStatus.DRAFT:
            raise Conflict(
                f"The campaign is {c.status}, not a draft.",
                code="campaign_not_draft",
                current_status=c.status,
            )
        part = selectors.part_of(c, actor)
        if (
            c.created_by_id is None or part
        ):  # before the dangers: this person may not decide on them
            raise four_eyes_refusal(part)
        found = dangers(c)
        if found and not override_reason:
            raise Conflict(
                "This campaign has a dangerous shape: "
                + "; ".join(d["message"] for d in found)
                + " Change it or approve with an override_reason.",
                code="dangerous_campaign",
                dangers=found,
                worst_case=worst_case(c),
            )
        before = _snap(c)
        c.approval_id = signoffs.sign_approval(
            CampaignSignoff, subject=c, user=actor, refuse=four_eyes_refusal
        )
        c.status = CampaignStatus.APPROVED
        c.approved_by = actor
        c.approved_at = now()
        c.approval_override_reason = override_reason if found else ""
        c.status_reason = ""
        c.save(
            update_fields=[
                "status",
                "approved_by",
                "approval",
                "approved_at",
                "approval_override_reason",
                "status_reason",
                "updated_at",
            ]
        )
        audit.record(
            actor=actor,
            action="campaign.approve",
            obj=c,
            before=before,
            after={
                **_snap(c),
                "worst_case": worst_case(c),
                "dangers_overridden": [d["code"] for d in found],
                "took_part": [
                    {"email": p["email"], "role": p["role"]} for p in selectors.took_part(c)
                ],
            },
            reason=override_reason,
            source=source,
        )
    return c


def _set_status(
    *, campaign_id, actor, to: str, allowed_from: set[str], action: str, reason: str, source: str
) -> Campaign:
    with transaction.atomic():
        c = _locked_campaign(campaign_id)
        if c.status == to:
            return c
        if c.status not in allowed_from:
            raise Conflict(
                f"A campaign that is {c.status} cannot become {to}.",
                code="invalid_transition",
                current_status=c.status,
            )
        before = _snap(c)
        c.status = to
        c.status_reason = reason
        c.save(update_fields=["status", "status_reason", "updated_at"])
        audit.record(
            actor=actor,
            action=action,
            obj=c,
            before=before,
            after=_snap(c),
            reason=reason,
            source=source,
        )
    return c


def pause_campaign(*, campaign_id, actor, reason: str, source: str = "api") -> Campaign:
    """The kill switch for a campaign: its codes stop redeeming with the next request."""
    return _set_status(
        campaign_id=campaign_id,
        actor=actor,
        to=CampaignStatus.PAUSED,
        allowed_from={CampaignStatus.APPROVED},
        action="campaign.pause",
        reason=_reason(reason),
        source=source,
    )


def resume_campaign(*, campaign_id, actor, reason: str = "", source: str = "api") -> Campaign:
    """Let a paused campaign redeem again: a second approval of a campaign stopped (often by its
    leak monitor), so, as for the approval, not by anyone who made or edited it."""
    part = (
        signoffs.part_of(CampaignSignoff, subject=selectors.campaign_by_id(campaign_id), user=actor)
        if getattr(actor, "pk", None)
        else ""
    )
    if part in (signoffs.SignoffRole.AUTHOR, signoffs.SignoffRole.EDITOR):
        raise four_eyes_refusal(part)
    return _set_status(
        campaign_id=campaign_id,
        actor=actor,
        to=CampaignStatus.APPROVED,
        allowed_from={CampaignStatus.PAUSED},
        action="campaign.resume",
        reason=_reason(reason, required=False),
        source=source,
    )


def revoke_campaign(*, campaign_id, actor, reason: str, source: str = "api") -> Campaign:
    """For good: a revoked campaign never redeems again."""
    return _set_status(
        campaign_id=campaign_id,
        actor=actor,
        to=CampaignStatus.REVOKED,
        allowed_from={CampaignStatus.DRAFT, CampaignStatus.APPROVED, CampaignStatus.PAUSED},
        action="campaign.revoke",
        reason=_reason(reason),
        source=source,
    )


def validate_monitor_settings(raw) -> dict:
    """``{"rate": {"factor": 5, "floor": 20}, "addresses": {"enabled": false}}``: known monitors,
    known keys, non-negative numbers (``enabled`` a boolean)."""
    from .. import monitors

    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict):
        raise ValidationFailed(
            "monitor_settings must be an object.", code="validation_error", field="monitor_settings"
        )
    out: dict = {}
    for name, values in raw.items():
        m = monitors.monitor_named(name)
        if m is None or not isinstance(values, dict):
            raise ValidationFailed(
                f"Unknown monitor {name!r}.", code="validation_error", field="monitor_settings"
            )
        clean = {}
        for key, value in values.items():
            if key == "enabled" and isinstance(value, bool):
                clean[key] = value
            elif (
                key in m.defaults
                and isinstance(value, (int, float))
                and not isinstance(value, bool)
                and 0 <= value <= 1_000_000
            ):
                clean[key] = value
            else:
                raise ValidationFailed(
                    f"Invalid setting {name}.{key}.",
                    code="validation_error",
                    field="monitor_settings",
                )
        out[name] = clean
    return out
