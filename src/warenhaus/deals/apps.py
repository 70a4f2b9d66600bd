from django.apps import AppConfig


class DealsConfig(AppConfig):
    name = "warenhaus.deals"
    label = "deals"
    verbose_name = "Flash deals"
