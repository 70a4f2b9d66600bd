"""Editing a campaign while it is a draft.

Only a draft can change: what an approver saw (the worst case, the dangerous shapes) is what
goes live, so an approved, paused or revoked campaign answers 409 ``campaign_not_editable``;
to change a live campaign, pause and revoke it and make a new one. The fields are checked by
the same rules as at creation (the helpers of :mod:`.services`), the change is audited with
before and after, and a new public code replaces the draft's code row (only its digest and
hint are kept, as for every code).

Four eyes hold for what is approved, not for what was first typed: whoever edits a draft
joins its sign-offs as an editor in the edit's transaction, so nobody who shaped it, first or
last, can approve it (the database refuses their approver row). ``created_by`` stays the author.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction

from warenhaus.core import audit, signoffs
from warenhaus.core.errors import Conflict, ValidationFailed

from .models import (
    CHANNELS,
    Campaign,
    CampaignSignoff,
    CampaignStatus,
    Code,
    CodeMode,
    CodeSource,
    DiscountKind,
    Eligibility,
    Stacking,
)
from .services.campaigns import _category_ids, _product_ids, validate_monitor_settings
from .services.codes import _code_row, _public_code, _refuse_blocked_pattern
from .services.common import _count, _locked_campaign, _money, _snap, _when

#: what a PATCH may name; anything else is refused rather than silently ignored
EDITABLE = frozenset(
    {
        "name",
        "purpose",
        "discount_kind",
        "discount_value",
        "discount_cap",
        "min_basket",
        "max_share",
        "eligible_categories",
        "eligible_products",
        "customer_eligibility",
        "channels",
        "valid_from",
        "valid_until",
        "total_limit",
        "per_customer_limit",
        "budget",
        "stacking",
        "code_mode",
        "public_code",
        "release_redemption_on_cancel",
        "expected_redemptions_per_hour",
        "auto_pause",
        "monitor_settings",
    }
)


def _state(c: Campaign) -> dict:
    return {
        **_snap(c),
        "purpose": c.purpose,
        "eligible_category_ids": c.eligible_category_ids,
        "eligible_product_ids": c.eligible_product_ids,
        "created_by": c.created_by_id,
    }


def _invalid(message: str, field: str):
    return ValidationFailed(message, code="validation_error", field=field)


def _choice(value, allowed, field: str, message: str):
    if value not in allowed:
        raise _invalid(message, field)
    return value


def _apply(c: Campaign, changes: dict) -> None:
    """Set the changed fields on ``c`` (not saved), each checked as at creation."""
    for field, raw in changes.items():
        if field == "name":
            name = (raw or "").strip()[:200]
            if not name:
                raise _invalid("A campaign needs a name.", "name")
            c.name = name
        elif field == "purpose":
            c.purpose = (raw or "").strip()[:4000]
        elif field == "discount_kind":
            c.discount_kind = _choice(
                raw, DiscountKind.values, field, "discount_kind is 'fixed' or 'percent'."
            )
        elif field == "discount_value":
            c.discount_value = _money(raw, field, allow_zero=False)
        elif field == "discount_cap":
            c.discount_cap = _money(raw, field, allow_zero=False, optional=True)
        elif field == "min_basket":
            c.min_basket = _money(raw, field)
        elif field == "max_share":
            c.max_share = _money(raw, field, allow_zero=False, optional=True) or Decimal("50.00")
        elif field == "eligible_categories":
            c.eligible_category_ids = _category_ids(raw)
        elif field == "eligible_products":
            c.eligible_product_ids = _product_ids(raw)
        elif field == "customer_eligibility":
            c.customer_eligibility = _choice(
                raw,
                Eligibility.values,
                field,
                f"customer_eligibility is one of {', '.join(Eligibility.values)}.",
            )
        elif field == "channels":
            chans = list(dict.fromkeys(raw or []))
            if not chans or any(x not in CHANNELS for x in chans):
                raise _invalid(f"channels is a non-empty subset of {', '.join(CHANNELS)}.", field)
            c.channels = chans
        elif field == "valid_from":
            c.valid_from = _when(raw, field, optional=False)
        elif field == "valid_until":
            c.valid_until = _when(raw, field)
        elif field in ("total_limit", "per_customer_limit", "expected_redemptions_per_hour"):
            setattr(c, field, _count(raw, field))
        elif field == "budget":
            c.budget = _money(raw, field, allow_zero=False, optional=True)
        elif field == "stacking":
            c.stacking = _choice(
                raw, Stacking.values, field, "stacking is 'exclusive' or 'stackable'."
            )
        elif field == "code_mode":
            c.code_mode = _choice(
                raw,
                CodeMode.values,
                field,
                "code_mode is 'public' (one code) or 'unique' (generated or imported codes).",
            )
        elif field in ("release_redemption_on_cancel", "auto_pause"):
            if not isinstance(raw, bool):
                raise _invalid(f"{field} is true or false.", field)
            setattr(c, field, raw)
        elif field == "monitor_settings":
            c.monitor_settings = validate_monitor_settings(raw)
    # the rules that tie fields together, checked on the result
    if c.discount_kind == DiscountKind.PERCENT and c.discount_value > 100:
        raise _invalid("A percent discount is at most 100.", "discount_value")
    if c.max_share > 100:
        raise _invalid("max_share is a percentage between 0 and 100.", "max_share")
    if c.valid_until is not None and c.valid_until <= c.valid_from:
        raise _invalid("valid_until must be after valid_from.", "valid_until")


def _replace_public_code(c: Campaign, *, code_mode_changed: bool, public_code) -> dict:
    """Keep the code rows in step with ``code_mode`` and ``public_code``; returns what the audit
    entry should say about the code."""
    public = Code.objects.filter(campaign=c, source=CodeSource.PUBLIC).first()
    if c.code_mode == CodeMode.UNIQUE:
        if public_code:
            raise _invalid("public_code belongs to code_mode 'public'.", "public_code")
        if public is not None:
            public.delete()  # a draft's code has never redeemed, nothing refers to it
            return {"public_code_removed": public.display_hint}
        return {}
    if (
        code_mode_changed
        and Code.objects.filter(campaign=c).exclude(source=CodeSource.PUBLIC).exists()
    ):
        raise Conflict(
            "This draft has generated or imported codes; it cannot switch to one public code.",
            code="campaign_has_codes",
        )
    if public_code is None:
        if public is None:
            raise _invalid("A campaign with code_mode 'public' needs a public_code.", "public_code")
        return {}
    plain = _public_code(public_code)
    _refuse_blocked_pattern(plain)
    row = _code_row(c, plain, source=CodeSource.PUBLIC, max_uses=None)
    if public is not None:
        if public.digest == row.digest:
            return {}
        row.pk, row.created_at = public.pk, public.created_at
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        raise Conflict(
            "This code is already in use by another campaign.", code="code_taken"
        ) from None
    return {
        "public_code_hint": row.display_hint,
        **({"previous_public_code_hint": public.display_hint} if public else {}),
    }


def update_campaign(*, campaign_id, actor, changes: dict, source: str = "api") -> Campaign:
    """Change a draft. ``changes`` holds only the fields to change (the names of creation)."""
    unknown = sorted(set(changes) - EDITABLE)
    if unknown:
        raise ValidationFailed(
            f"These fields cannot be changed: {', '.join(unknown)}.",
            code="validation_error",
            field=unknown[0],
        )
    with transaction.atomic():
        c = _locked_campaign(campaign_id)
        if c.status != CampaignStatus.DRAFT:
            raise Conflict(
                f"The campaign is {c.status}; only a draft can be edited. Pause and revoke it and make a new one instead.",
                code="campaign_not_editable",
                current_status=c.status,
            )
        before = _state(c)
        previous_mode = c.code_mode
        fields = {k: v for k, v in changes.items() if k != "public_code"}
        _apply(c, fields)
        code_note = {}
        if "public_code" in changes or "code_mode" in changes:
            code_note = _replace_public_code(
                c,
                code_mode_changed=c.code_mode != previous_mode,
                public_code=changes.get("public_code") or None,
            )
        if _state(c) == before and not code_note:
            return c
        signoffs.take_part(CampaignSignoff, subject=c, user=actor)
        after = _state(c)
        c.save()
        changed = sorted(k for k in after if after[k] != before[k])
        audit.record(
            actor=actor,
            action="campaign.edit",
            obj=c,
            before={k: before[k] for k in changed},
            after={**{k: after[k] for k in changed}, **code_note},
            source=source,
        )
    return c
