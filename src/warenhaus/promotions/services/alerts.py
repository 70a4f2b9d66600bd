"""The leak monitors' sweep: alerts on approved campaigns, the automatic pause, the mail to the
promotions staff, and acknowledging an alert."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from warenhaus.accounts.roles import can
from warenhaus.core import audit, clock
from warenhaus.core.errors import Forbidden, NotFound

from ..mail_checks import ALERT_ROLES
from ..models import Alert, Campaign, CampaignStatus
from .common import _snap


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
    from .. import monitors

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
