from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "warenhaus.web"
    label = "web"
