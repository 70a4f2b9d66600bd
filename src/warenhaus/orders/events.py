"""What happens to orders, for promotions, deals, notifications and the domains to come.

Every event carries ``orders`` (a list: bulk actions send one event for many orders) and, where
a person acted, ``actor``, ``reason`` and ``source``. Sent inside the order's transaction.
"""

from warenhaus.core.events import DomainEvent

order_placed = DomainEvent(
    "order.placed",
    "An order was written and its stock reserved. Extra: ``cart_id``, ``held`` (variant id ->"
    " deal hold id), ``evaluation`` (the vouchers as checked), ``user``, ``email``, ``channel``,"
    " ``client_ip``, ``shipping_address``, ``payment_fingerprint``, ``language``.",
)
order_paid = DomainEvent("order.paid", "The money for the orders is authorised or received.")
order_cancelled = DomainEvent(
    "order.cancelled",
    "Unshipped orders were cancelled; stock and money are being given back. Extra:"
    " ``customer_note`` (what the customer may read), ``mail`` (tell the customers).",
)
order_held = DomainEvent("order.held", "Orders were put on hold.")
order_released = DomainEvent("order.released", "A hold was lifted.")
order_shipped = DomainEvent("order.shipped", "The goods left the warehouse.")
order_delivered = DomainEvent("order.delivered", "The goods reached the customer.")
order_refunded = DomainEvent("order.refunded", "Money was given back after shipping.")
