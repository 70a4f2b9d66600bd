from django.apps import AppConfig


class RemediationConfig(AppConfig):
    name = "warenhaus.remediation"
    label = "remediation"
    verbose_name = "Remediation"

    def ready(self) -> None:
        from . import mails  # noqa: F401  (registers the notice mail's context builder)
