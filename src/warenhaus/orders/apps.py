from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "warenhaus.orders"
    label = "orders"

    def ready(self):
        from . import mail_checks  # noqa: F401  (registers the send-time checks)
