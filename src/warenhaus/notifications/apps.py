from datetime import timedelta

from django.apps import AppConfig, apps
from django.db.models.signals import pre_save


def requeue_lost_deliveries() -> int:
    from .services import requeue_due

    return requeue_due()


class NotificationsConfig(AppConfig):
    name = "warenhaus.notifications"
    label = "notifications"

    def ready(self):
        from warenhaus.core import periodic

        from . import receivers

        receivers.connect()

        periodic.register(
            "outbox maintenance",
            every=timedelta(seconds=30),
            func=requeue_lost_deliveries,
            option="requeue",
            env="OUTBOX_REQUEUE_INTERVAL",
            help="Seconds between outbox checks for messages whose delivery task was lost",
        )
        if apps.is_installed("django_tasks_db"):
            from django_tasks_db.models import DBTaskResult

            from .tasks import use_chosen_id

            # A delivery task is written under the id its message already holds (see .tasks).
            pre_save.connect(
                use_chosen_id,
                sender=DBTaskResult,
                dispatch_uid="warenhaus.notifications.use_chosen_id",
            )
