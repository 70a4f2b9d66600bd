from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "warenhaus.core"
    label = "core"
