"""Send-time check for the voucher alert mails: they go only to people who are still active
promotions staff when the worker sends them."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from warenhaus.notifications.audience import send_check

ALERT_ROLES = ("promotions", "promotions_approver")


@send_check("voucher_alert")
def still_promotions_staff(message) -> str | None:
    ok = (
        get_user_model()
        .objects.filter(
            email__iexact=message.to_email, is_active=True, groups__name__in=ALERT_ROLES
        )
        .exists()
    )
    return None if ok else "the recipient is no longer active promotions staff"
