"""How checkout reacts to what happens to accounts."""

from warenhaus.accounts import events as account_events


def merge_guest_cart(*, user, cart_id, outcome, **event):
    """The anonymous cart joins the shopper's (see :func:`.services.merge_into_user_cart`)."""
    from .services import merge_into_user_cart

    cart = merge_into_user_cart(cart_id=cart_id, user=user)
    outcome["cart_id"] = cart.id if cart else None


def connect() -> None:
    account_events.signed_in_with_cart.connect(
        merge_guest_cart, dispatch_uid="checkout.merge_guest_cart"
    )
