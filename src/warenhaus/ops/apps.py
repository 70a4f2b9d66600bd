from django.apps import AppConfig


class OpsConfig(AppConfig):
    """The operator's commands (worker, serve, demo, staff): the top layer, above every domain."""

    name = "warenhaus.ops"
    label = "ops"
    verbose_name = "Operations"
