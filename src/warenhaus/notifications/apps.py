from django.apps import AppConfig, apps
from django.db.models.signals import pre_save


class NotificationsConfig(AppConfig):
    name = "warenhaus.notifications"
    label = "notifications"

    def ready(self):
        from . import receivers

        receivers.connect()
        if apps.is_installed("django_tasks_db"):
            from django_tasks_db.models import DBTaskResult

            from .tasks import use_chosen_id

            # A delivery task is written under the id its message already holds (see .tasks).
            pre_save.connect(
                use_chosen_id,
                sender=DBTaskResult,
                dispatch_uid="warenhaus.notifications.use_chosen_id",
            )
