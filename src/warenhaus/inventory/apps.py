from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "warenhaus.inventory"
    label = "inventory"
