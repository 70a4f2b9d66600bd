"""System checks that stop an unsafe production start (``warenhaus serve`` runs them)."""

from django.conf import settings
from django.core.checks import Error, Tags, register

DEMO_SECRET_PREFIX = "demo-only-insecure-key"


@register(Tags.security, deploy=True)
def secret_key_is_set(app_configs, **kwargs):
    if settings.SECRET_KEY.startswith(DEMO_SECRET_PREFIX):
        return [Error("SECRET_KEY is the demo key.", hint="Set the SECRET_KEY environment variable to a long random string.", id="warenhaus.E001")]
    return []
