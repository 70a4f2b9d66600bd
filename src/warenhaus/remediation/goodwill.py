"""Goodwill vouchers: each affected customer of a job gets one single-use code of a small
campaign of the job's own.

The codes are never stored in clear, as every code (:mod:`warenhaus.promotions.codes`). They are
*derived*: ``HMAC(secret, job id + customer)`` read as eleven characters of the code alphabet,
plus the check character; the secret is theirs alone (``GOODWILL_CODE_SECRET``, no fallback to
another key). So the job writes only the code's digest when it issues it, the notice
mail computes the same code again when the worker renders it, and a job resumed after a crash
issues the same code again instead of a second one (the digest is unique). Without the secret,
the database tells nothing usable.

The campaign is made for the job: its author is whoever prepared the job (they chose the
amount), and it is approved by the staff member who executed the job (the second pair of eyes
on an amount the preview shows), through the campaign's sign-offs like every approval, so the
database refuses an executor who prepared the job. It is bounded by construction: single-use
codes, one per customer, a total limit and a budget of exactly what the job issues, an end
date, and a minimum basket of twice the voucher so that it is never a dangerous shape.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from decimal import Decimal

from django.conf import settings

from warenhaus.core import signoffs
from warenhaus.core.clock import now
from warenhaus.core.errors import DomainError, Forbidden
from warenhaus.core.models import SignoffRole
from warenhaus.promotions import codes as codelib
from warenhaus.promotions.models import (
    CHANNELS,
    Campaign,
    CampaignSignoff,
    CampaignStatus,
    Code,
    CodeMode,
    CodeSource,
    DiscountKind,
    Stacking,
)


def _key() -> bytes:
    return hmac.new(
        settings.GOODWILL_CODE_SECRET.encode(), b"warenhaus.remediation.goodwill", hashlib.sha256
    ).digest()


def code_for(job_id: int, customer_key: str) -> str:
    """The goodwill code of one customer of one job (normalised, without dashes)."""
    mac = hmac.new(_key(), f"{job_id}:{customer_key}".encode(), hashlib.sha256).digest()
    n = int.from_bytes(mac, "big")
    chars = []
    for _ in range(codelib.RANDOM_LENGTH):
        n, v = divmod(n, codelib.MODULUS)
        chars.append(codelib.ALPHABET[v])
    payload = "".join(chars)
    return payload + codelib.check_character(payload)


def code_row(campaign: Campaign, code: str) -> Code:
    return Code(
        campaign=campaign,
        digest=codelib.digest(code),
        hint=codelib.hint(code),
        length=len(code),
        source=CodeSource.GENERATED,
        max_uses=1,
        **codelib.heads(code),
    )


def four_eyes_refusal(_part: str = "") -> DomainError:
    return Forbidden(
        "A job with goodwill vouchers is executed by a second person, not the one who prepared it (four eyes): "
        "preview it, then let another support or risk colleague execute it.",
        code="four_eyes_required",
    )


def make_campaign(*, job, amount: Decimal, customers: int, approver) -> Campaign:
    """The job's goodwill campaign, live at once (see the module's note on approval)."""
    at = now()
    customers = max(customers, 1)
    c = Campaign.objects.create(
        name=f"Goodwill: remediation #{job.pk}"[:200],
        purpose=f"One goodwill voucher per customer affected by remediation #{job.pk}: {job.reason}"[
            :4000
        ],
        discount_kind=DiscountKind.FIXED,
        discount_value=amount,
        min_basket=amount * 2,
        max_share=Decimal("50.00"),
        channels=list(CHANNELS),
        valid_from=at,
        valid_until=at + timedelta(days=settings.REMEDIATION_GOODWILL_VALID_DAYS),
        total_limit=customers,
        per_customer_limit=1,
        budget=amount * customers,
        stacking=Stacking.EXCLUSIVE,
        code_mode=CodeMode.UNIQUE,
        release_redemption_on_cancel=True,
        auto_pause=False,
        created_by=job.created_by,
        status_reason=f"goodwill of remediation #{job.pk}",
    )
    signoffs.take_part(CampaignSignoff, subject=c, user=job.created_by, role=SignoffRole.AUTHOR)
    c.approval_id = signoffs.sign_approval(
        CampaignSignoff, subject=c, user=approver, refuse=four_eyes_refusal
    )
    c.status, c.approved_by, c.approved_at = CampaignStatus.APPROVED, approver, at
    c.save(update_fields=["approval", "status", "approved_by", "approved_at"])
    return c
