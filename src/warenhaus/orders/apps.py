from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "warenhaus.orders"
    label = "orders"
