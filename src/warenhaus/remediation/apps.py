from datetime import timedelta

from django.apps import AppConfig


def recover_stalled_jobs() -> int:
    from .services import recover_stalled

    return recover_stalled()


class RemediationConfig(AppConfig):
    name = "warenhaus.remediation"
    label = "remediation"
    verbose_name = "Remediation"

    def ready(self) -> None:
        from warenhaus.core import periodic

        from . import mails  # noqa: F401  (registers the notice mail's context builder)

        # with the outbox check: a job whose runner died is resumed as a lost mail is re-sent
        periodic.register(
            "remediation recovery",
            every=timedelta(seconds=30),
            func=recover_stalled_jobs,
            option="requeue",
            env="OUTBOX_REQUEUE_INTERVAL",
        )
