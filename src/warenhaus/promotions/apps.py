from django.apps import AppConfig


class PromotionsConfig(AppConfig):
    name = "warenhaus.promotions"
    label = "promotions"
