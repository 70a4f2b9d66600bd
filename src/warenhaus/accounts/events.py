"""What happens to accounts, for checkout, notifications and the domains to come.

Sent inside the transaction that made the change (see :mod:`warenhaus.core.events`).
"""

from warenhaus.core.events import DomainEvent

login_link_requested = DomainEvent(
    "account.login_link_requested",
    "A known, active account asked for a login link (the throttles let it through). Extra:"
    " ``user``.",
)
signed_in_with_cart = DomainEvent(
    "account.signed_in_with_cart",
    "A shopper signed in and brought an anonymous cart. Extra: ``user``, ``cart_id`` (the"
    " anonymous cart), ``outcome`` (a dict: the receiver that keeps carts puts the id of the"
    " shopper's cart after the sign-in under ``cart_id``).",
)
