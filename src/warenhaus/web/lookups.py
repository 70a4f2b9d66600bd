"""The reads the pages use, gathered from the domains' selectors under one name."""

from warenhaus.catalog.selectors import category_by_slug
from warenhaus.checkout.selectors import open_cart_of, order_from_cart
from warenhaus.core.selectors import (
    audit_actions,
    audit_entries,
    audit_object_types,
    day_range,
    start_of_day,
)
from warenhaus.orders.selectors import order_counts_by_status

__all__ = [
    "audit_actions",
    "audit_entries",
    "audit_object_types",
    "category_by_slug",
    "day_range",
    "open_cart_of",
    "order_counts_by_status",
    "order_from_cart",
    "start_of_day",
]
