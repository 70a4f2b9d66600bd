from django.apps import AppConfig


class DealsConfig(AppConfig):
    name = "warenhaus.deals"
    label = "deals"
    verbose_name = "Flash deals"

    def ready(self) -> None:
        from warenhaus.checkout import holds

        from . import (
            mails,  # noqa: F401  (registers the offer mail's context builder)
            receivers,
        )
        from .services.sales import CartHolds

        holds.register(CartHolds())  # checkout asks deals about held cart lines
        receivers.connect()
