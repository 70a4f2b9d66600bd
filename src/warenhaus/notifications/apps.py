from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "warenhaus.notifications"
    label = "notifications"
