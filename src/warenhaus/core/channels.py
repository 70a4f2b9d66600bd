"""The channels an order comes through, and a voucher may be limited to: one list for the shop."""

from django.db import models


class Channel(models.TextChoices):
    WEB = "web", "web"  # the storefront's pages
    API = "api", "api"  # the HTTP API (apps, integrations)
    PHONE = "phone", "phone"  # staff taking an order for a customer
