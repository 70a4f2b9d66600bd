"""The wait-list offer mail: a returned unit is held for the next person on the wait list, at
the deal price, until a deadline; the link opens the cart that holds it."""

from __future__ import annotations

from warenhaus.notifications import mails


def offer_url(token: str) -> str:
    """The offer's page in the active language (the mail's: its recipient's)."""
    return mails.page_url("web:deal_offer", token, f"/deals/offer/{token}/")


def offer_context(ctx: dict) -> dict:
    deal, hold = ctx["deal"], ctx["hold"]
    return {
        "title": deal.variant.product.title
        + (f" – {deal.variant.title}" if deal.variant.title else ""),
        "price": deal.deal_price,
        "quantity": hold.quantity,
        "expires_at": hold.expires_at,
        "offer_url": offer_url(ctx["entry_token"]),
    }


mails.BUILDERS["deal_offer"] = offer_context
