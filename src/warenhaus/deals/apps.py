from django.apps import AppConfig


class DealsConfig(AppConfig):
    name = "warenhaus.deals"
    label = "deals"
    verbose_name = "Flash deals"

    def ready(self) -> None:
        from . import mails  # noqa: F401  (registers the offer mail's context builder)
        from . import receivers

        receivers.connect()
