"""What happens in flash deals, for the domains above to react to (sent inside the transaction)."""

from warenhaus.core.events import DomainEvent

hold_expired = DomainEvent(
    "deal.hold_expired",
    "A hold ran out at its deadline (the sweep): its units went back to the deal, the cart line"
    " is a regular one now. Extra: ``hold_id``, ``deal_id``, ``cart_id``, ``quantity``, ``at``.",
)
