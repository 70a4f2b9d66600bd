"""Template context shared by every page."""

from django.conf import settings
from django.utils.functional import SimpleLazyObject


def _cart_count(request) -> int:
    cart_id = request.session.get("cart_id") if hasattr(request, "session") else None
    if not cart_id:
        return 0
    from django.db.models import Sum

    from warenhaus.checkout.models import CartLine

    return (
        CartLine.objects.filter(cart_id=cart_id, cart__status="open").aggregate(n=Sum("quantity"))[
            "n"
        ]
        or 0
    )


def _enabled_payments():
    from warenhaus.checkout.payments import enabled

    return enabled()


def shop(request):
    from warenhaus.accounts.roles import can, roles_of

    user = getattr(request, "user", None)
    return {
        "SHOP_NAME": settings.SHOP_NAME,
        "staff_roles": roles_of(user),
        "can_console": bool(user and can(user, "console.access")),
        "test_card_enabled": "test" in _enabled_payments(),
        # evaluated only where a template shows it
        "cart_count": SimpleLazyObject(lambda: _cart_count(request)),
    }
