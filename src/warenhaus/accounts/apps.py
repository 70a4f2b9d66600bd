from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "warenhaus.accounts"
    label = "accounts"

    def ready(self):
        from . import mails  # noqa: F401  (registers the login-link mail's builder and send-time check)
