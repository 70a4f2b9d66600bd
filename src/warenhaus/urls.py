from django.conf.urls.i18n import i18n_patterns
from django.urls import include, path

from warenhaus.api import api
from warenhaus.deals import fastlane

fastlane.serve_with(api)  # the waiting room's fast lane answers as this API does

urlpatterns = [
    path("api/v1/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
]
urlpatterns += i18n_patterns(
    path("", include("warenhaus.web.urls")),
    prefix_default_language=False,
)
