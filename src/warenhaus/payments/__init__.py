"""Payment gateways and the states of payments (below orders: orders void and refund through it).

The gateways are in :mod:`.gateways`; the names of payment and payment-action states in
:mod:`.states`. Neither knows about orders or carts.
"""
