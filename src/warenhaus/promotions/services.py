"""Use-cases of the promotions domain: making and approving campaigns (four eyes), codes
(generated, public, imported), the kill switch, vouchers in carts, and redeeming and releasing
them inside the checkout's and the cancellation's transactions.

Four eyes: whoever made a campaign, edited it or added codes to it as a draft has a row in its
sign-offs (:mod:`warenhaus.core.signoffs`), and the approval's own row cannot join theirs. Once
approved, a campaign keeps its shape: codes added later are single-use.

Every staff action writes an audit entry in the same transaction. Counters change only through
conditional UPDATEs, always in the order campaign -> code -> customer usage, so concurrent
checkouts neither deadlock nor pass a limit.
"""

from __future__ import annotations

import fnmatch
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import BooleanField, F, Q
from django.db.models.expressions import RawSQL
from django.utils.dateparse import parse_datetime

from warenhaus.accounts.roles import can
from warenhaus.core import audit, clock, ratelimit, signoffs
from warenhaus.core.clock import now
from warenhaus.core.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from warenhaus.core.models import SignoffRole
from warenhaus.core.money import MoneyError, parse_amount

from . import codes as codelib
from . import selectors
from .errors import VoucherRefused, campaign_refusal, four_eyes_refusal
from .evaluation import (
    Customer,
    Evaluation,
    check_channel,
    check_code_state,
    check_customer,
    evaluate,
)
from .mail_checks import ALERT_ROLES
from .models import (
    CHANNELS,
    Alert,
    BlockRule,
    Campaign,
    CampaignSignoff,
    CampaignStatus,
    CartVoucher,
    Code,
    CodeBatch,
    CodeMode,
    CodeSource,
    CodeStatus,
    CustomerUsage,
    DiscountKind,
    Eligibility,
    Redemption,
    Stacking,
)

AUDIT_FIELDS = (
    "name",
    "status",
    "discount_kind",
    "discount_value",
    "discount_cap",
    "min_basket",
    "max_share",
    "channels",
    "valid_from",
    "valid_until",
    "total_limit",
    "per_customer_limit",
    "budget",
    "stacking",
    "code_mode",
    "customer_eligibility",
    "release_redemption_on_cancel",
    "auto_pause",
    "expected_redemptions_per_hour",
    "monitor_settings",
)


def _snap(c: Campaign) -> dict:
    return audit.snapshot(c, AUDIT_FIELDS)


def _reason(reason: str, *, required: bool = True) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise ValidationFailed(
            "Please give a reason; it goes into the audit trail.", code="reason_required"
        )
    return reason[:2000]


# --- campaigns -------------------------------------------------------------------------------


def _money(raw, field: str, *, allow_zero=True, optional=False) -> Decimal | None:
    if raw is None or raw == "":
        if optional:
            return None
        raw = "0"
    try:
        return parse_amount(raw, allow_zero=allow_zero)
    except MoneyError as err:
        raise ValidationFailed(f"{field}: {err}", code="invalid_money", field=field) from None


def _when(raw, field: str, *, optional=True) -> datetime | None:
    if raw is None or raw == "":
        if optional:
            return None
        raise ValidationFailed(f"{field} is required.", code="validation_error", field=field)
    if isinstance(raw, datetime):
        value = raw
    else:
        value = parse_datetime(str(raw))
    if value is None or value.tzinfo is None:
        raise ValidationFailed(
            f"{field} must be an ISO 8601 time with offset, e.g. 2026-07-01T00:00:00+00:00.",
            code="validation_error",
            field=field,
        )
    return value


#: the largest value of each count a campaign takes (far beyond any real campaign, far below
#: what the columns hold: 2^31 - 1 on PostgreSQL)
COUNT_MAX = {
    "total_limit": 100_000_000,
    "per_customer_limit": 10_000,
    "expected_redemptions_per_hour": 1_000_000,
    "max_uses_per_code": 100_000_000,
}


def _count(raw, field: str) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= COUNT_MAX[field]:
        raise ValidationFailed(
            f"{field} must be a whole number from 1 to {COUNT_MAX[field]:,} (or omitted for no limit).",
            code="validation_error",
            field=field,
        )
    return raw


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


def _public_code(raw: str) -> str:
    code = codelib.normalise(raw)
    if not codelib.PLAIN_CODE.fullmatch(code):
        raise ValidationFailed("A code has 4 to 32 letters and digits.", code="invalid_code")
    if codelib.looks_generated(code):
        raise ValidationFailed(
            f"A public or partner code must not have the shape of a generated code ({codelib.GENERATED_LENGTH} characters); "
            "choose a longer or shorter one.",
            code="invalid_code",
        )
    return code


def _code_row(
    campaign: Campaign, code: str, *, source: str, max_uses: int | None, batch=None
) -> Code:
    return Code(
        campaign=campaign,
        batch=batch,
        digest=codelib.digest(code),
        hint=codelib.hint(code),
        length=len(code),
        source=source,
        max_uses=max_uses,
        **codelib.heads(code),
    )


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


def _locked_campaign(campaign_id) -> Campaign:
    try:
        pk = int(campaign_id)
    except (TypeError, ValueError):
        raise NotFound("No such campaign.", code="campaign_not_found") from None
    c = Campaign.objects.select_for_update().filter(pk=pk).first()
    if c is None:
        raise NotFound("No such campaign.", code="campaign_not_found")
    return c


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


# --- codes -----------------------------------------------------------------------------------


def _unique_campaign(c: Campaign) -> None:
    if c.code_mode != CodeMode.UNIQUE:
        raise Conflict(
            "This campaign has one public code; it cannot have generated or imported codes.",
            code="campaign_has_public_code",
        )
    if c.status == CampaignStatus.REVOKED:
        raise Conflict(
            "The campaign is revoked.", code="invalid_transition", current_status=c.status
        )


def _campaign_for_codes(campaign_id, actor, *, max_uses: int | None) -> Campaign:
    """The unique-code campaign that codes go into, inside the caller's transaction. In a draft
    the person counts among its editors (four eyes); an approved or paused campaign takes only
    single-use codes, as it was approved. Codes that redeem more than once lock the campaign's
    row, so that an approval at the same moment sees them or they see the approval."""
    widening = max_uses != 1
    c = _locked_campaign(campaign_id) if widening else selectors.campaign_by_id(campaign_id)
    _unique_campaign(c)
    if c.status == CampaignStatus.DRAFT:
        signoffs.take_part(CampaignSignoff, subject=c, user=actor)
    elif widening:
        raise campaign_refusal(
            "codes_widen_campaign", current_status=c.status, max_uses_per_code=max_uses
        )
    return c


def generate_codes(
    *, campaign_id, actor, count, source: str = "api"
) -> tuple[CodeBatch, list[str]]:
    """``count`` new single-use codes. They are returned once, here; only their digests stay."""
    limit = settings.VOUCHER_MAX_CODES_PER_CALL
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= limit:
        raise ValidationFailed(
            f"count must be between 1 and {limit}.", code="invalid_count", max=limit
        )
    with transaction.atomic():
        # Not locked: a batch of 10,000 takes a moment, and checkouts redeeming this campaign
        # (which update its row) must not wait for it.
        c = _campaign_for_codes(campaign_id, actor, max_uses=1)
        batch = CodeBatch.objects.create(
            campaign=c,
            source=CodeSource.GENERATED,
            count=count,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        plain: set[str] = set()
        while len(plain) < count:
            plain.add(codelib.generate())
        rows = [
            _code_row(c, p, source=CodeSource.GENERATED, max_uses=1, batch=batch) for p in plain
        ]
        try:
            with transaction.atomic():
                Code.objects.bulk_create(rows, batch_size=1000)
        except IntegrityError:  # a collision with an existing code (about 1 in 10^12): draw again
            raise Conflict("Please try again.", code="code_collision", retryable=True) from None
        audit.record(
            actor=actor,
            action="campaign.codes_generate",
            obj=c,
            after={
                "batch": batch.pk,
                "count": count,
                "max_uses_per_code": 1,
                "campaign_status": c.status,
            },
            source=source,
        )
    return batch, sorted(codelib.display(p) for p in plain)


def codes_from_csv(text: str) -> list[str]:
    """The first column of a partner's CSV file (comma or semicolon separated); a header line
    that is not a code ("code", "Gutscheincode") is skipped."""
    import csv
    import io

    sample = text[:2048]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    rows = [
        r[0].strip()
        for r in csv.reader(io.StringIO(text), delimiter=delimiter)
        if r and r[0].strip()
    ]
    if rows and rows[0].strip().lower() in {
        "code",
        "codes",
        "gutscheincode",
        "voucher",
        "voucher_code",
        "gutschein",
    }:
        rows = rows[1:]
    return rows


def import_codes(
    *, campaign_id, actor, codes, max_uses_per_code: int | None = 1, source: str = "api"
) -> dict:
    """Partner codes (a list of strings; :func:`codes_from_csv` reads a CSV file). Codes that
    are malformed or exist already are reported, not imported; the rest are stored as digests
    only. Codes that redeem more than once (``max_uses_per_code`` above 1, or None: only the
    campaign's limits) go into a draft only, where the approver sees them; an approved campaign
    refuses them with 409 ``codes_widen_campaign``."""
    if not isinstance(codes, (list, tuple)) or not codes:
        raise ValidationFailed(
            "codes must be a non-empty list of strings.", code="validation_error", field="codes"
        )
    if len(codes) > settings.VOUCHER_MAX_CODES_PER_CALL:
        raise ValidationFailed(
            f"At most {settings.VOUCHER_MAX_CODES_PER_CALL} codes per call.", code="invalid_count"
        )
    max_uses = _count(max_uses_per_code, "max_uses_per_code")
    rejected, seen = [], {}
    for i, raw in enumerate(codes):
        try:
            code = _public_code(str(raw))
            _refuse_blocked_pattern(code)
        except DomainError as err:
            rejected.append({"index": i, "reason": err.code})
            continue
        if code in seen:
            rejected.append({"index": i, "reason": "duplicate"})
            continue
        seen[code] = i
    with transaction.atomic():
        c = _campaign_for_codes(campaign_id, actor, max_uses=max_uses)
        digests = {codelib.digest(code): code for code in seen}
        existing = set(
            Code.objects.filter(digest__in=list(digests)).values_list("digest", flat=True)
        )
        for d in existing:
            rejected.append({"index": seen[digests[d]], "reason": "code_taken"})
        fresh = [code for d, code in digests.items() if d not in existing]
        batch = CodeBatch.objects.create(
            campaign=c,
            source=CodeSource.IMPORTED,
            count=len(fresh),
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        Code.objects.bulk_create(
            [
                _code_row(c, code, source=CodeSource.IMPORTED, max_uses=max_uses, batch=batch)
                for code in fresh
            ],
            batch_size=1000,
        )
        audit.record(
            actor=actor,
            action="campaign.codes_import",
            obj=c,
            after={
                "batch": batch.pk,
                "imported": len(fresh),
                "rejected": len(rejected),
                "max_uses_per_code": max_uses,
                "campaign_status": c.status,
            },
            source=source,
        )
    return {
        "batch": batch.pk,
        "imported": len(fresh),
        "rejected": sorted(rejected, key=lambda r: r["index"]),
    }


def find_code(raw: str) -> Code:
    """The stored code for what someone typed; a typo in a generated code is caught by its check
    character before the database is asked. ``row.blocked_by_rule``: an active pattern block
    matches what was typed (read in the same query)."""
    code = codelib.normalise(raw)
    if not code or len(code) > 64:
        raise VoucherRefused("voucher_unknown")
    if codelib.looks_generated(code) and not codelib.is_valid_generated(code):
        raise VoucherRefused("voucher_typo")
    qs = (
        Code.objects.select_related("campaign")
        .filter(digest=codelib.digest(code))
        .annotate(blocked_by_rule=_blocked_by_rule_sql(code))
    )
    row = next(iter(qs), None)  # the digest is unique: no ORDER BY ... LIMIT needed
    if row is None:
        raise VoucherRefused("voucher_unknown")
    return row


def _active_patterns() -> list[str]:
    return list(BlockRule.objects.filter(is_active=True).values_list("pattern", flat=True))


def _matches_block_rule(code: str) -> bool:
    return any(fnmatch.fnmatchcase(code, p) for p in _active_patterns())


def _blocked_by_rule_sql(code: str) -> RawSQL:
    """:func:`_matches_block_rule` as an SQL expression, to ask it in the code's own query. A
    pattern is letters and digits and a final ``*`` (``PATTERN``): it matches the codes that
    start with what precedes the ``*``."""
    qn = connection.ops.quote_name
    table, pattern = qn(BlockRule._meta.db_table), qn("pattern")
    return RawSQL(
        f"EXISTS (SELECT 1 FROM {table} WHERE {table}.{qn('is_active')} AND SUBSTR(%s, 1, LENGTH({table}.{pattern}) - 1) || '*' = {table}.{pattern})",
        (code,),
        output_field=BooleanField(),
    )


def _refuse_blocked_pattern(code: str) -> None:
    if _matches_block_rule(code):
        raise VoucherRefused("voucher_blocked")


def _block_rows(qs, *, reason: str) -> int:
    at = now()
    ids = list(qs.filter(status=CodeStatus.ACTIVE).values_list("pk", flat=True))
    Code.objects.filter(pk__in=ids).update(
        status=CodeStatus.BLOCKED, blocked_reason=reason, blocked_at=at
    )
    return len(ids)


def block_code(*, code: str, actor, reason: str, source: str = "api") -> Code:
    """Block one code, effective for the next request (no caches between here and a checkout)."""
    reason = _reason(reason)
    normalised = codelib.normalise(code)
    row = Code.objects.filter(digest=codelib.digest(normalised)).first() if normalised else None
    if row is None:
        raise NotFound("There is no code like this.", code="voucher_unknown")
    with transaction.atomic():
        row = Code.objects.select_for_update().get(pk=row.pk)
        if row.status != CodeStatus.BLOCKED:
            row.status, row.blocked_reason, row.blocked_at = CodeStatus.BLOCKED, reason, now()
            row.save(update_fields=["status", "blocked_reason", "blocked_at"])
            audit.record(
                actor=actor,
                action="code.block",
                obj=row,
                before={"status": "active"},
                after={"status": "blocked", "campaign": row.campaign_id},
                reason=reason,
                source=source,
            )
    return row


PATTERN = __import__("re").compile(r"[A-Z0-9]{4,32}\*")


def block_pattern(*, pattern: str, actor, reason: str, source: str = "api") -> dict:
    """Block every code that starts with a prefix (``SOMMER*``), now and when typed later.

    Codes are stored as digests, so existing codes are found by keyed digests of their first
    4..8 characters: exact for prefixes of up to 8 characters. A longer prefix blocks the stored
    codes that share its first 8 characters and are long enough (possibly a few more than it
    names: the kill switch errs on the safe side) and, exactly, every code typed from now on."""
    reason = _reason(reason)
    p = codelib.normalise(pattern)
    if not PATTERN.fullmatch(p):
        raise ValidationFailed(
            "A pattern is at least 4 letters or digits followed by '*', e.g. SOMMER*.",
            code="invalid_pattern",
        )
    prefix = p[:-1]
    n = min(len(prefix), max(codelib.HEAD_LENGTHS))
    with transaction.atomic():
        rule = BlockRule.objects.create(
            pattern=p, reason=reason, created_by=actor if getattr(actor, "pk", None) else None
        )
        qs = Code.objects.filter(
            **{f"head{n}": codelib.head_digest(prefix[:n])}, length__gte=len(prefix)
        )
        count = _block_rows(qs, reason=reason)
        audit.record(
            actor=actor,
            action="code.block_pattern",
            object_type="promotions.blockrule",
            object_id=str(rule.pk),
            after={"pattern": p, "blocked": count},
            reason=reason,
            source=source,
        )
    return {"rule": rule.pk, "pattern": p, "blocked": count}


# --- vouchers in carts -----------------------------------------------------------------------


def customer_key(*, user_id=None, email: str = "") -> str | None:
    """``user:<id>`` for a shopper with an account (also when a guest checkout names an account's
    e-mail address), else ``email:<address>``; None while nothing is known."""
    if user_id:
        return f"user:{user_id}"
    if email:
        from django.contrib.auth import get_user_model

        uid = get_user_model().objects.filter(email=email).values_list("pk", flat=True).first()
        return f"user:{uid}" if uid else f"email:{email}"
    return None


def _rate_keys(
    *, cart_id: str, user, client_ip: str, session_key: str = ""
) -> list[tuple[str, str, int]]:
    keys = [("voucher-cart", cart_id, settings.VOUCHER_ATTEMPT_LIMIT)]
    if user is not None and getattr(user, "is_authenticated", False):
        keys.append(("voucher-shopper", str(user.pk), settings.VOUCHER_ATTEMPT_LIMIT))
    if session_key:
        keys.append(("voucher-session", session_key, settings.VOUCHER_ATTEMPT_LIMIT))
    if client_ip:
        keys.append(("voucher-addr", client_ip, settings.VOUCHER_ATTEMPT_LIMIT_ADDRESS))
    return keys


#: refusals that say a guessed code hit nothing; only these count against the client address
GUESS_MISSES = {"voucher_unknown", "voucher_typo"}


def apply_voucher(
    *,
    cart_id: str,
    user=None,
    code: str,
    channel: str = "web",
    client_ip: str = "",
    session_key: str = "",
):
    """Put a code on a cart, or say why it does not apply. Every attempt counts against the
    cart, the shopper, the session and the address, and it is counted *before* the code is
    looked at, atomically, so that parallel guessing cannot pass the limit either (a count's
    row stays locked until the attempt commits); after a burst the client must wait (429 with
    Retry-After). A shopper tries a handful of codes at most. The address (a crowd behind one
    carrier NAT) gets the count back unless the code was unknown: it limits guesses, not
    shoppers.

    One transaction, one commit per attempt: a refusal commits the counts (every refusal comes
    before anything else is written) and is raised after the commit. Returns the cart's view
    (``checkout.services.CartView``) as committed, so the caller need not read the cart again."""
    refusal = None
    with transaction.atomic():
        attempt = ratelimit.attempt(
            _rate_keys(cart_id=cart_id, user=user, client_ip=client_ip, session_key=session_key),
            window=settings.VOUCHER_ATTEMPT_WINDOW,
            message="Too many voucher codes tried; please wait before trying again.",
        )
        refusal = attempt.refusal
        if refusal is None:
            try:
                view = _put_on_cart(cart_id=cart_id, user=user, code=code, channel=channel)
            except DomainError as err:
                refusal = err
            if refusal is None or refusal.code not in GUESS_MISSES:
                attempt.give_back("voucher-addr")
    if refusal is not None:
        raise refusal
    return view


def _put_on_cart(*, cart_id: str, user, code: str, channel: str):
    """The checks and the write of :func:`apply_voucher`, inside its transaction."""
    from warenhaus.checkout import services as checkout

    cart = checkout.get_cart(cart_id=cart_id, user=user, for_update=True)
    checkout._open(cart)
    row = find_code(code)
    if row.blocked_by_rule:
        raise VoucherRefused("voucher_blocked")
    base = checkout.read_lines(cart)
    held = cart_voucher_rows(cart.pk) if base.has_vouchers is not False else []
    uid = cart.user_id
    customer = Customer(key=customer_key(user_id=uid), user_id=uid)
    if any(c.pk == row.pk for _, c in held):
        return checkout.cart_view(
            cart,
            base,
            evaluate_cart(cart=cart, lines=base.priced, subtotal=base.subtotal, rows=held)
            if base.priced
            else Evaluation(),
        )
    check_code_state(row, row.campaign)
    check_channel(row.campaign, channel)
    check_customer(row.campaign, customer, final=False)
    if not base.lines:
        raise Conflict("The cart is empty; add items first.", code="cart_empty")
    rows = (held if base.priced else []) + [(0, row)]
    trial = evaluate(
        rows, lines=base.priced, subtotal=base.subtotal, customer=customer, channel=channel
    )
    new = trial.applied[-1]
    if new.error is not None:
        raise new.error
    new.cart_voucher_id = CartVoucher.objects.create(cart=cart, code=row).pk
    rows[-1] = (new.cart_voucher_id, row)
    cart.save(update_fields=["updated_at"])
    # The cart view evaluates without a channel: the same answer unless the channel refused
    # one of the vouchers held before.
    if any(a.error is not None and a.error.code == "voucher_channel" for a in trial.applied):
        trial = evaluate(rows, lines=base.priced, subtotal=base.subtotal, customer=customer)
    return checkout.cart_view(cart, base, trial)


def remove_voucher(*, cart_id: str, user=None, code: str):
    """Take a code off a cart: by the code itself or by the voucher's ``id`` in the cart view."""
    from warenhaus.checkout import services as checkout

    with transaction.atomic():
        cart = checkout.get_cart(cart_id=cart_id, user=user, for_update=True)
        checkout._open(cart)
        qs = CartVoucher.objects.filter(cart=cart)
        raw = (code or "").strip()
        if raw.isdigit() and qs.filter(pk=int(raw)).exists():
            qs = qs.filter(pk=int(raw))
        else:
            qs = qs.filter(code__digest=codelib.digest(codelib.normalise(raw)))
        deleted, _ = qs.delete()
        if not deleted:
            raise NotFound("This voucher is not in the cart.", code="voucher_not_in_cart")
        cart.save(update_fields=["updated_at"])
    return cart


def move_cart_vouchers(*, from_cart_id: str, to_cart_id: str) -> None:
    """At login the anonymous cart joins the shopper's: its vouchers come along (those the
    shopper's cart holds already are not doubled). Whether they still apply to this shopper
    (per-customer limit, first order) the cart view says at once."""
    have = set(CartVoucher.objects.filter(cart_id=to_cart_id).values_list("code_id", flat=True))
    CartVoucher.objects.filter(cart_id=from_cart_id).exclude(code_id__in=have).update(
        cart_id=to_cart_id
    )
    CartVoucher.objects.filter(cart_id=from_cart_id).delete()


def has_vouchers_sql(cart_id) -> RawSQL:
    """An expression (for the cart's line query) that says whether a cart holds a voucher:
    a cart without vouchers then costs no query of its own."""
    qn = connection.ops.quote_name
    return RawSQL(
        f"EXISTS (SELECT 1 FROM {qn(CartVoucher._meta.db_table)} WHERE {qn('cart_id')} = %s)",
        (cart_id,),
        output_field=BooleanField(),
    )


def cart_voucher_rows(cart_id) -> list[tuple[int, Code]]:
    """``(cart voucher id, code with its campaign)`` in the order they were applied."""
    return [
        (cv.pk, cv.code)
        for cv in CartVoucher.objects.filter(cart_id=cart_id).select_related("code__campaign")
    ]


def evaluate_cart(*, cart, lines, subtotal: Decimal, rows=None) -> Evaluation:
    """The cart view's evaluation: no locks, channel not yet known. ``rows``: the cart's
    vouchers when the caller has read them already."""
    rows = cart_voucher_rows(cart.pk) if rows is None else rows
    if not rows:
        return Evaluation()
    return evaluate(
        rows,
        lines=lines,
        subtotal=subtotal,
        customer=Customer(key=customer_key(user_id=cart.user_id), user_id=cart.user_id),
    )


# --- redeeming and releasing -----------------------------------------------------------------


def check_for_checkout(
    *, evaluation: Evaluation, lines, subtotal: Decimal, user_id, email: str, channel: str
) -> Evaluation:
    """Evaluate again with everything checkout knows (channel, customer); raise the first reason
    a voucher does not apply."""
    if not evaluation.applied:
        return evaluation
    customer = Customer(
        key=customer_key(user_id=user_id, email=email), user_id=user_id, email=email
    )
    ev = evaluate(
        [(a.cart_voucher_id, a.code) for a in evaluation.applied],
        lines=lines,
        subtotal=subtotal,
        customer=customer,
        channel=channel,
        final=True,
    )
    if ev.errors:
        raise ev.errors[0]
    return ev


def _why_campaign_refused(campaign_id: int, amount: Decimal) -> VoucherRefused:
    c = Campaign.objects.get(pk=campaign_id)
    try:
        check_code_state(Code(status=CodeStatus.ACTIVE), c)
    except VoucherRefused as err:
        return err
    return VoucherRefused("voucher_budget_exhausted")


def redeem(
    *, order, evaluation: Evaluation, user=None, email: str, channel: str, client_ip: str = ""
) -> list[Redemption]:
    """Inside the checkout's transaction: count each voucher against its campaign, its code and
    the customer, each with a conditional UPDATE that refuses passing a limit; write the
    redemptions. Raises the specific refusal, which rolls the whole checkout back."""
    live = [a for a in evaluation.applied if a.error is None and a.amount > 0]
    if not live:
        return []
    at = now()
    user_id = getattr(user, "pk", None)
    key = customer_key(user_id=user_id, email=email)
    new_account = bool(user_id) and user.date_joined >= at - timedelta(
        hours=settings.VOUCHER_NEW_ACCOUNT_HOURS
    )
    for a in sorted(live, key=lambda a: a.campaign.pk):
        c = a.campaign
        n = (
            Campaign.objects.filter(pk=c.pk, status=CampaignStatus.APPROVED)
            .filter(Q(total_limit__isnull=True) | Q(redeemed_count__lt=F("total_limit")))
            .filter(Q(budget__isnull=True) | Q(budget__gte=F("spent_amount") + a.amount))
            .update(
                redeemed_count=F("redeemed_count") + 1, spent_amount=F("spent_amount") + a.amount
            )
        )
        if n != 1:
            raise _why_campaign_refused(c.pk, a.amount)
    for a in sorted(live, key=lambda a: a.code.pk):
        n = (
            Code.objects.filter(pk=a.code.pk, status=CodeStatus.ACTIVE)
            .filter(Q(max_uses__isnull=True) | Q(uses__lt=F("max_uses")))
            .update(uses=F("uses") + 1)
        )
        if n != 1:
            blocked = Code.objects.filter(pk=a.code.pk, status=CodeStatus.BLOCKED).exists()
            raise VoucherRefused("voucher_blocked" if blocked else "voucher_exhausted")
    for a in sorted(live, key=lambda a: a.campaign.pk):
        limit = a.campaign.per_customer_limit
        usage, _ = CustomerUsage.objects.get_or_create(
            campaign_id=a.campaign.pk, customer_key=key, defaults={"uses": 0, "max_uses": limit}
        )
        n = (
            CustomerUsage.objects.filter(pk=usage.pk)
            .filter(Q(max_uses__isnull=True) | Q(uses__lt=F("max_uses")))
            .update(uses=F("uses") + 1)
        )
        if n != 1:
            raise VoucherRefused("limit_per_customer", limit=limit)
    basket = order.subtotal
    rows = Redemption.objects.bulk_create(
        [
            Redemption(
                campaign=a.campaign,
                code=a.code,
                order=order,
                customer_key=key,
                amount=a.amount,
                basket_value=basket,
                channel=channel,
                client_ip=client_ip or None,
                new_account=new_account,
                guest=not user_id,
                created_at=at,
            )
            for a in live
        ]
    )
    return rows  # the cart's vouchers go once the order is confirmed (see receivers)


def validate_monitor_settings(raw) -> dict:
    """``{"rate": {"factor": 5, "floor": 20}, "addresses": {"enabled": false}}``: known monitors,
    known keys, non-negative numbers (``enabled`` a boolean)."""
    from . import monitors

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


# --- leak monitors ---------------------------------------------------------------------------


def _alert_recipients():
    from django.contrib.auth import get_user_model

    return list(
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=ALERT_ROLES)
        .distinct()
        .order_by("pk")
    )


def _mail_alerts(alerts: list[Alert], campaign: Campaign) -> int:
    """One mail per recipient for the alerts one sweep wrote on one campaign."""
    from warenhaus.notifications.services import enqueue_mail

    paused = any(a.paused for a in alerts)
    items = [
        {
            "monitor": a.monitor,
            "message": a.message,
            "measured": f"{a.measured:g}",
            "threshold": f"{a.threshold:g}",
            "window_seconds": a.window_seconds,
        }
        for a in alerts
    ]
    sent = 0
    for user in _alert_recipients():
        msg = enqueue_mail(
            kind="voucher_alert",
            to_email=user.email,
            template="voucher_alert",
            context={
                "campaign_id": campaign.pk,
                "campaign_name": campaign.name,
                "alerts": items,
                "paused": paused,
            },
            language=getattr(user, "preferred_language", "") or "de",
            dedupe_key=f"voucher_alert:{alerts[0].pk}:{user.pk}",
            related_object=f"promotions.alert:{alerts[0].pk}",
        )
        sent += msg is not None
    return sent


def _check_campaign(campaign_id: int, at: datetime) -> list[Alert]:
    """One campaign, in one transaction under its row lock (so two workers sweeping at once
    write one alert): new incidents get an alert, a pause (if the campaign lets the monitors
    pause it) with its audit entry, and a mail to the promotions staff; incidents whose monitor
    no longer trips are closed."""
    from . import monitors

    new: list[Alert] = []
    with transaction.atomic():
        c = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if c is None or c.status != CampaignStatus.APPROVED:
            return new
        open_alerts = {
            a.monitor: a for a in Alert.objects.filter(campaign=c, resolved_at__isnull=True)
        }
        for r in monitors.readings(c, at):
            current = open_alerts.get(r.monitor)
            if not r.tripped:
                if current is not None:
                    Alert.objects.filter(pk=current.pk).update(resolved_at=at)
                continue
            if current is not None:  # the same incident: one alert, not one per sweep
                Alert.objects.filter(pk=current.pk).update(
                    last_seen_at=at, peak=max(current.peak, r.measured)
                )
                continue
            alert = Alert.objects.create(
                campaign=c,
                monitor=r.monitor,
                measured=r.measured,
                threshold=r.threshold,
                peak=r.measured,
                window_seconds=r.window_seconds,
                message=r.message,
                created_at=at,
                last_seen_at=at,
            )
            audit.record(
                actor=None,
                action="campaign.alert",
                obj=c,
                after={
                    "alert": alert.pk,
                    "monitor": r.monitor,
                    "measured": r.measured,
                    "threshold": r.threshold,
                    "window_seconds": r.window_seconds,
                },
                reason=r.message,
                source="system",
            )
            if c.auto_pause and c.status == CampaignStatus.APPROVED:
                before = _snap(c)
                c.status = CampaignStatus.PAUSED
                c.status_reason = f"Paused by the leak monitor '{r.monitor}': {r.message}"
                c.save(update_fields=["status", "status_reason", "updated_at"])
                audit.record(
                    actor=None,
                    action="campaign.pause",
                    obj=c,
                    before=before,
                    after={**_snap(c), "alert": alert.pk},
                    reason=c.status_reason,
                    source="system",
                )
                alert.paused = True
                alert.save(update_fields=["paused"])
            new.append(alert)
        if new:
            _mail_alerts(new, c)
    return new


def run_monitors(now=None) -> list[Alert]:
    """Sweep every approved campaign with the leak monitors (the worker calls this every few
    seconds; checkout never does, so applying and redeeming a code stay fast). Returns the alerts
    written by this sweep."""
    at = now or clock.now()
    out: list[Alert] = []
    for pk in (
        Campaign.objects.filter(status=CampaignStatus.APPROVED)
        .order_by("pk")
        .values_list("pk", flat=True)
    ):
        out.extend(_check_campaign(pk, at))
    return out


def acknowledge_alert(*, alert_id, actor, source: str = "api") -> Alert:
    if not can(actor, "promotions.view"):
        raise Forbidden("Only promotions staff may acknowledge an alert.", code="forbidden")
    try:
        pk = int(alert_id)
    except (TypeError, ValueError):
        raise NotFound("No such alert.", code="alert_not_found") from None
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(pk=pk).first()
        if alert is None:
            raise NotFound("No such alert.", code="alert_not_found")
        if alert.acknowledged_at is None:
            alert.acknowledged_by = actor
            alert.acknowledged_at = clock.now()
            alert.save(update_fields=["acknowledged_by", "acknowledged_at"])
            audit.record(
                actor=actor,
                action="alert.acknowledge",
                obj=alert,
                reason=alert.message,
                source=source,
            )
    return alert
