from datetime import timedelta

from django.apps import AppConfig


def run_leak_monitors() -> int:
    from .services import run_monitors

    return len(run_monitors())


class PromotionsConfig(AppConfig):
    name = "warenhaus.promotions"
    label = "promotions"

    def ready(self):
        from warenhaus.checkout import discounts
        from warenhaus.core import periodic

        from . import (
            mail_checks,  # noqa: F401  (registers the send-time check of the alert mails)
            receivers,
        )
        from .services import CartCodes

        receivers.connect()
        discounts.register(CartCodes())  # the cart's codes are worth what promotions say

        periodic.register(
            "voucher leak monitors",
            every=timedelta(seconds=15),
            func=run_leak_monitors,
            option="monitor",
            env="VOUCHER_MONITOR_INTERVAL",
            help="Seconds between sweeps of the voucher leak monitors",
        )
