from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "warenhaus.accounts"
    label = "accounts"

    def ready(self):
        from warenhaus.core import callers

        from .roles import can
        from .services import user_for_token

        callers.provide(user_for_token=user_for_token, can=can)
