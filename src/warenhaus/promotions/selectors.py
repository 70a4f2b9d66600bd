"""Reading campaigns, codes and redemptions for the API, the console and the CLI."""

from __future__ import annotations

from warenhaus.core import signoffs
from warenhaus.core.errors import NotFound
from warenhaus.core.models import SignoffRole
from warenhaus.core.money import money_json

from .models import Alert, Campaign, CampaignSignoff, CodeSource, CodeStatus, Redemption
from .monitors import MONITORS, describe_alert


def campaign_by_id(campaign_id) -> Campaign:
    try:
        pk = int(campaign_id)
    except (TypeError, ValueError):
        raise NotFound("No such campaign.", code="campaign_not_found") from None
    c = Campaign.objects.select_related("created_by", "approved_by").filter(pk=pk).first()
    if c is None:
        raise NotFound("No such campaign.", code="campaign_not_found")
    return c


def took_part(c: Campaign) -> list[dict]:
    """Who made, edited and approved the campaign, in order."""
    return [
        {"email": s.user.email, "role": s.role, "at": s.at}
        for s in signoffs.parts(CampaignSignoff, subject=c)
    ]


def editors(c: Campaign) -> list[str]:
    """Who edited the campaign (or added codes to it) while it was a draft."""
    return [p["email"] for p in took_part(c) if p["role"] == SignoffRole.EDITOR]


def part_of(c: Campaign, user) -> str:
    """The part ``user`` took in the campaign (author, editor, approver), or ``""``."""
    return (
        signoffs.part_of(CampaignSignoff, subject=c, user=user) if getattr(user, "pk", None) else ""
    )


def _iso(dt):
    return dt.isoformat() if dt is not None else None


def campaign_json(c: Campaign, *, detail: bool = True) -> dict:
    from .services import dangers, worst_case

    body = {
        "id": c.pk,
        "name": c.name,
        "purpose": c.purpose,
        "status": c.status,
        "status_reason": c.status_reason,
        "discount": {
            "kind": c.discount_kind,
            "value": f"{c.discount_value:.2f}",
            "cap": money_json(c.discount_cap) if c.discount_cap is not None else None,
        },
        "min_basket": money_json(c.min_basket),
        "max_share": f"{c.max_share:.2f}",
        "eligible_category_ids": c.eligible_category_ids,
        "eligible_product_ids": c.eligible_product_ids,
        "customer_eligibility": c.customer_eligibility,
        "channels": c.channels,
        "valid_from": _iso(c.valid_from),
        "valid_until": _iso(c.valid_until),
        "total_limit": c.total_limit,
        "per_customer_limit": c.per_customer_limit,
        "budget": money_json(c.budget) if c.budget is not None else None,
        "stacking": c.stacking,
        "code_mode": c.code_mode,
        "release_redemption_on_cancel": c.release_redemption_on_cancel,
        "expected_redemptions_per_hour": c.expected_redemptions_per_hour,
        "auto_pause": c.auto_pause,
        "monitors": {m.name: m.settings_for(c) for m in MONITORS},
        "redeemed_count": c.redeemed_count,
        "spent": money_json(c.spent_amount),
        "created_by": getattr(c.created_by, "email", None),
        "approved_by": getattr(c.approved_by, "email", None),
        "approved_at": _iso(c.approved_at),
        "approval_override_reason": c.approval_override_reason,
        "worst_case": worst_case(c),
    }
    if detail:
        body["dangers"] = dangers(c)
        body["took_part"] = [{**p, "at": _iso(p["at"])} for p in took_part(c)]
        body["codes"] = {
            "total": c.codes.count(),
            "blocked": c.codes.filter(status=CodeStatus.BLOCKED).count(),
            "public_hint": next(
                (x.display_hint for x in c.codes.filter(source=CodeSource.PUBLIC)[:1]), None
            ),
        }
    return body


def redemption_json(r: Redemption) -> dict:
    return {
        "id": r.pk,
        "order": r.order.number,
        "code_hint": r.code.display_hint,
        "customer_key": r.redeemer_key,
        "amount": money_json(r.amount),
        "basket_value": money_json(r.basket_value),
        "channel": r.channel,
        "client_ip": r.client_ip,
        "new_account": r.new_account,
        "guest": r.guest,
        "created_at": _iso(r.created_at),
        "released_at": _iso(r.released_at),
    }


def redemptions_of(campaign: Campaign):
    return Redemption.objects.filter(campaign=campaign).select_related("order", "code")


def alerts(*, open: bool | None = None, acknowledged: bool | None = None, campaign=None):
    """Alerts, newest first. ``open``: the incident is still going on (its monitor still trips);
    ``acknowledged``: someone has looked at it."""
    qs = Alert.objects.select_related("campaign", "acknowledged_by")
    if campaign is not None:
        qs = qs.filter(campaign=campaign)
    if open is not None:
        qs = qs.filter(resolved_at__isnull=open)
    if acknowledged is not None:
        qs = qs.filter(acknowledged_at__isnull=not acknowledged)
    return qs.order_by("-pk")


def alert_text(a, language: str | None = None) -> str:
    """The alert's sentence in ``language`` (default: the active one); ``message`` stays English."""
    return describe_alert(a, language)


def alert_json(a) -> dict:
    return {
        "id": a.pk,
        "campaign": a.campaign_id,
        "monitor": a.monitor,
        "measured": a.measured,
        "threshold": a.threshold,
        "peak": a.peak,
        "window_seconds": a.window_seconds,
        "message": a.message,
        "message_de": alert_text(a, "de"),
        "paused_campaign": a.paused,
        "created_at": _iso(a.created_at),
        "last_seen_at": _iso(a.last_seen_at),
        "resolved_at": _iso(a.resolved_at),
        "acknowledged_by": getattr(a.acknowledged_by, "email", None),
        "acknowledged_at": _iso(a.acknowledged_at),
    }
