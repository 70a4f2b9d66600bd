"""What each mail template needs besides what its caller passes.

Callers pass the domain objects (``{"order": order}``); the builders here add what a template
should not have to compute: labels for codes, the VAT breakdown as decimals, the link to the
order, the bank details an invoice customer pays to. Everything is evaluated when the worker
renders the message to send it, in the recipient's language, from the objects as they are then
(the caller's instances are stored as references and loaded again, :mod:`.context`).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from django.conf import settings
from django.utils.translation import gettext_lazy as _

PAYMENT_METHODS = {
    "invoice": _("Invoice (pay after delivery)"),
    "test": _("Credit card"),
}
COUNTRIES = {"DE": _("Germany"), "AT": _("Austria")}

#: Where invoice customers transfer the money to. A deployment sets ``INVOICE_BANK_ACCOUNT`` in
#: its settings; the default is the shop's demo account (a documentation IBAN, not a real one).
DEFAULT_BANK_ACCOUNT = {
    "holder": "Warenhaus GmbH",
    "iban": "DE89 3704 0044 0532 0130 00",
    "bic": "COBADEFFXXX",
    "bank": "Commerzbank Köln",
}


def bank_account() -> dict:
    return getattr(settings, "INVOICE_BANK_ACCOUNT", None) or DEFAULT_BANK_ACCOUNT


def page_url(name: str, arg: str, fallback: str) -> str:
    """The absolute address of the page ``name`` (one URL argument) in the active language (the
    mail's: its recipient's); ``fallback`` is its path where the pages are not installed."""
    from django.urls import NoReverseMatch, reverse

    try:
        path = reverse(name, args=[arg])
    except NoReverseMatch:
        path = fallback
    return f"{settings.SITE_URL}{path}"


def order_url(order) -> str:
    """The shopper's page of this order; none for guest orders (there is no page a guest could
    open)."""
    if not order.user_id:
        return ""
    return page_url("web:my_order", order.number, f"/account/orders/{order.number}/")


def order_context(ctx: dict) -> dict:
    order = ctx["order"]
    lines = ctx.get("lines")
    if lines is None:
        lines = list(order.lines.all())
    address = dict(order.shipping_address or {})
    address["country_name"] = COUNTRIES.get(address.get("country", ""), address.get("country", ""))
    from warenhaus.checkout import shipping

    method = shipping.METHODS.get(order.shipping_method)
    return {
        "lines": lines,
        "address": address,
        "customer_name": address.get("name") or "",
        "vat_breakdown": [
            {
                "rate": r["rate"],
                "amount": Decimal(str(r["amount"])),
                "gross": Decimal(str(r.get("gross", "0"))),
            }
            for r in (order.vat_breakdown or [])
        ],
        "payment_method_label": PAYMENT_METHODS.get(order.payment_method, order.payment_method),
        "shipping_method_label": method.label if method else order.shipping_method,
        "is_invoice": order.payment_method == "invoice",
        "payment_days": int(getattr(settings, "INVOICE_PAYMENT_DAYS", 14)),
        "bank": bank_account(),
        "order_url": order_url(order),
    }


#: template name -> builder of the extra context it needs
BUILDERS: dict[str, Callable[[dict], dict]] = {
    "order_confirmation": order_context,
    "order_cancelled": order_context,
    "order_shipped": order_context,
}


#: template name -> what to blank out of a sent mail before it is kept in the outbox (secrets
#: that went to the recipient, such as a voucher code, are theirs, not the database's)
REDACTORS: dict[str, Callable[[str], str]] = {}


def redact(template: str, text: str) -> str:
    fn = REDACTORS.get(template)
    return fn(text) if fn and text else text


def context_for(template: str, ctx: dict) -> dict:
    builder = BUILDERS.get(template)
    extra = builder(ctx) if builder else {}
    return {"site_url": settings.SITE_URL, "shop_name": settings.SHOP_NAME, **extra, **ctx}
