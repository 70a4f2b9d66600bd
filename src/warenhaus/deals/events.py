"""What happens in deals that other domains may react to (sent inside the transaction)."""

from django.dispatch import Signal

#: holds ran out at their deadline (the sweep); kwargs: hold_id, deal_id, cart_id, quantity, at
hold_expired = Signal()
