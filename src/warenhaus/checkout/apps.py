from django.apps import AppConfig


class CheckoutConfig(AppConfig):
    name = "warenhaus.checkout"
    label = "checkout"

    def ready(self):
        from . import receivers

        receivers.connect()
