"""Template context shared by every page."""

from django.conf import settings


def shop(request):
    from warenhaus.accounts.roles import can, roles_of

    user = getattr(request, "user", None)
    return {
        "SHOP_NAME": settings.SHOP_NAME,
        "staff_roles": roles_of(user),
        "can_console": bool(user and can(user, "console.access")),
    }
