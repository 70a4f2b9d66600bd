from datetime import timedelta

from django.apps import AppConfig


def settle_stuck_checkouts() -> int:
    from .settlement import settle_stuck

    return len(settle_stuck())


class CheckoutConfig(AppConfig):
    name = "warenhaus.checkout"
    label = "checkout"

    def ready(self):
        from warenhaus.core import periodic

        from . import receivers

        receivers.connect()
        periodic.register(
            "checkout settlement",
            every=timedelta(seconds=30),
            func=settle_stuck_checkouts,
            option="settle",
            env="CHECKOUT_SETTLE_INTERVAL",
            help="Seconds between checks for checkouts that died while the card was asked",
        )
