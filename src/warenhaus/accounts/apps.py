from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "warenhaus.accounts"
    label = "accounts"
