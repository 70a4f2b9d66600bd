from datetime import timedelta

from django.apps import AppConfig


def sweep_deals() -> int:
    """The worker's round: expired holds, paced admission (the admitter), wait-list offers."""
    from .services import sweep

    return sum(sweep(beat=True).values())


class DealsConfig(AppConfig):
    name = "warenhaus.deals"
    label = "deals"
    verbose_name = "Flash deals"

    def ready(self) -> None:
        from warenhaus.checkout import holds
        from warenhaus.core import periodic

        from . import (
            mails,  # noqa: F401  (registers the offer mail's context builder)
            receivers,
        )
        from .services.sales import CartHolds

        holds.register(CartHolds())  # checkout asks deals about held cart lines
        receivers.connect()

        periodic.register(
            "flash-deal sweep",
            every=timedelta(seconds=1),
            func=sweep_deals,
            option="deals",
            env="DEALS_SWEEP_INTERVAL",
            help="Seconds between flash-deal sweeps: expired holds, paced admission, wait-list "
            "offers, the end of deals",
        )
