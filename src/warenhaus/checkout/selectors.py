"""Reading carts without changing them."""

from __future__ import annotations

from warenhaus.orders.models import Order

from .models import Cart, CartStatus


def open_cart_of(user) -> Cart | None:
    """The shopper's open cart, without creating one (a page view must not write)."""
    if user is None or not user.is_authenticated:
        return None
    return Cart.objects.filter(user=user, status=CartStatus.OPEN).order_by("-updated_at").first()


def order_from_cart(cart_id: str) -> Order | None:
    """The order a cart became; used when a checkout form is submitted twice."""
    if not cart_id:
        return None
    return Order.objects.filter(cart_id=cart_id).order_by("-placed_at").first()
