"""The wait-list offer mail: a returned unit is held for the next person on the wait list, at
the deal price, until a deadline; the link opens the cart that holds it."""

from __future__ import annotations

from django.conf import settings

from warenhaus.notifications import mails


def offer_url(token: str) -> str:
    """The offer's page in the active language (the mail's: its recipient's)."""
    from django.urls import NoReverseMatch, reverse

    try:
        path = reverse("web:deal_offer", args=[token])
    except NoReverseMatch:
        path = f"/deals/offer/{token}/"
    return f"{settings.SITE_URL}{path}"


def offer_context(ctx: dict) -> dict:
    deal, hold = ctx["deal"], ctx["hold"]
    return {
        "title": deal.variant.product.title + (f" – {deal.variant.title}" if deal.variant.title else ""),
        "price": deal.deal_price,
        "quantity": hold.quantity,
        "expires_at": hold.expires_at,
        "offer_url": offer_url(ctx["entry_token"]),
    }


mails.BUILDERS["deal_offer"] = offer_context
