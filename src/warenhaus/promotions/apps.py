from django.apps import AppConfig


class PromotionsConfig(AppConfig):
    name = "warenhaus.promotions"
    label = "promotions"

    def ready(self):
        from . import mail_checks  # noqa: F401  (registers the send-time check of the alert mails)
        from . import receivers

        receivers.connect()
