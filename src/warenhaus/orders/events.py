"""What happens to orders, for promotions, deals, notifications and the domains to come.

Every event carries ``orders`` (a list: bulk actions send one event for many orders) and, where
a person acted, ``actor``, ``reason`` and ``source``. Sent inside the order's transaction.
"""

from warenhaus.core.events import DomainEvent

order_placed = DomainEvent(
    "order.placed",
    "An order was written and its stock reserved (a card order is ``authorizing`` until"
    " ``order_confirmed``, or undone by ``order_payment_failed``). Extra: ``cart_id``,"
    " ``held`` (variant id -> deal hold id), ``evaluation`` (the vouchers as checked), ``user``, ``email``, ``channel``,"
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
order_confirmed = DomainEvent(
    "order.confirmed",
    "The order is binding: its payment was authorised or an invoice accepted (once per order;"
    " the customer is told now). For a card it follows ``order_placed`` after the card's answer.",
)
order_payment_failed = DomainEvent(
    "order.payment_failed",
    "The payment of an order being authorised failed and the order is discarded as if never"
    " placed: receivers undo what they did on ``order_placed`` (the rows pointing at the order"
    " must be gone before it is deleted). Extra: ``reason`` (the gateway's problem code).",
)
