import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warenhaus.settings")
django_application = get_wsgi_application()

from django.conf import settings  # noqa: E402

from warenhaus.core.checks import require_production_secrets  # noqa: E402

if (
    not settings.DEBUG
):  # whichever server loads the application: never with the demo's public secrets
    require_production_secrets("The Warenhaus WSGI application")

from warenhaus.deals.fastlane import FastLane  # noqa: E402 - needs the settings set up above

# the waiting room's joins and polls are answered in front of Django's request cycle (the same
# views, limiter, errors and headers; see warenhaus.deals.fastlane)
application = FastLane(django_application)
