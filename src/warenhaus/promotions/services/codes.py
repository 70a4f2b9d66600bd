"""Codes: generated and imported into unique-code campaigns, looked up when typed, and blocked
one by one or by pattern (the kill switch, effective with the next request)."""

from __future__ import annotations

import fnmatch
import re

from django.conf import settings
from django.db import IntegrityError, transaction

from warenhaus.core import audit, signoffs
from warenhaus.core.clock import now
from warenhaus.core.errors import Conflict, DomainError, NotFound, ValidationFailed

from .. import codes as codelib
from .. import selectors
from ..errors import VoucherRefused, campaign_refusal
from ..models import (
    BlockRule,
    Campaign,
    CampaignSignoff,
    CampaignStatus,
    Code,
    CodeBatch,
    CodeMode,
    CodeSource,
    CodeStatus,
)
from ..sql import code_blocked_by_rule
from .common import _count, _locked_campaign, _reason


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
        .annotate(blocked_by_rule=code_blocked_by_rule(code))
    )
    row = next(iter(qs), None)  # the digest is unique: no ORDER BY ... LIMIT needed
    if row is None:
        raise VoucherRefused("voucher_unknown")
    return row


def _active_patterns() -> list[str]:
    return list(BlockRule.objects.filter(is_active=True).values_list("pattern", flat=True))


def _matches_block_rule(code: str) -> bool:
    return any(fnmatch.fnmatchcase(code, p) for p in _active_patterns())


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
                before={"status": CodeStatus.ACTIVE},
                after={"status": CodeStatus.BLOCKED, "campaign": row.campaign_id},
                reason=reason,
                source=source,
            )
    return row


PATTERN = re.compile(r"[A-Z0-9]{4,32}\*")


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
