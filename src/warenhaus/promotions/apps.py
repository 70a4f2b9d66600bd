from django.apps import AppConfig


class PromotionsConfig(AppConfig):
    name = "warenhaus.promotions"
    label = "promotions"

    def ready(self):
        from warenhaus.checkout import discounts

        # mail_checks registers the send-time check of the alert mails
        from . import mail_checks, receivers  # noqa: F401
        from .services import CartCodes

        receivers.connect()
        discounts.register(CartCodes())  # the cart's codes are worth what promotions say
