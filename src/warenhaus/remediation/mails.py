"""The notice a remediation job sends each affected customer, once: which of their orders were
cancelled or put on hold, the staff's apology note, and (if chosen) their goodwill code, which is
computed here when the worker renders the mail (:mod:`.goodwill`), never stored in clear."""

from __future__ import annotations

import re

from warenhaus.notifications import mails
from warenhaus.promotions import codes as codelib

from . import goodwill
from .models import Outcome


def notice_context(ctx: dict) -> dict:
    job = ctx["job"]
    orders = ctx.get("orders") or []
    out = {
        "customer_note": job.customer_note,
        "any_cancelled": any(o.get("outcome") == Outcome.CANCELLED for o in orders),
        "any_held": any(o.get("outcome") == Outcome.HELD for o in orders),
        "goodwill": None,
    }
    campaign = job.goodwill_campaign
    if campaign is not None and ctx.get("with_goodwill"):
        out["goodwill"] = {
            "code": codelib.display(goodwill.code_for(job.pk, ctx["customer_key"])),
            "amount": campaign.discount_value,
            "min_basket": campaign.min_basket,
            "valid_until": campaign.valid_until,
        }
    return out


_CODE = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{1}([0-9A-Z]{3})\b")


def hide_codes(text: str) -> str:
    """What the outbox keeps of a sent notice: the goodwill code as a hint only."""
    return _CODE.sub(lambda m: f"••••-••••-•{m.group(1)}", text)


mails.BUILDERS["remediation_notice"] = notice_context
mails.REDACTORS["remediation_notice"] = hide_codes
