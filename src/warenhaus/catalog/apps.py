from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "warenhaus.catalog"
    label = "catalog"
