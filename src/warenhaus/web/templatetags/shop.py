"""Template filters for the pages: money in the shopper's language, localised category names,
order statuses and VAT rates."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template
from django.utils import translation

from warenhaus.core.money import cents

register = template.Library()


def _amount(value) -> Decimal | None:
    if isinstance(value, dict):
        value = value.get("amount")
    if value is None or value == "":
        return None
    try:
        return cents(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def format_money(value, currency: str = "EUR", language: str | None = None) -> str:
    """``1.299,00 €`` in German, ``€1,299.00`` in English. Accepts a Decimal, a decimal string or
    the API's ``{"amount", "currency"}`` shape."""
    if isinstance(value, dict):
        currency = value.get("currency") or currency
    amount = _amount(value)
    if amount is None:
        return ""
    language = (language or translation.get_language() or "de").lower()
    sign = "-" if amount < 0 else ""
    text = f"{abs(amount):,.2f}"
    symbol = "€" if currency == "EUR" else currency
    if language.startswith("en"):
        return f"{sign}{symbol}{text}" if symbol == "€" else f"{sign}{text} {symbol}"
    text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return f"{sign}{text} {symbol}"


@register.filter
def money(value, currency="EUR"):
    return format_money(value, currency)


@register.filter
def localized_name(category) -> str:
    if category is None:
        return ""
    return category.localized_name(translation.get_language() or "de")


@register.filter
def vat_rate(value) -> str:
    """``19.00`` -> ``19``."""
    try:
        return f"{Decimal(str(value)):.0f}"
    except (InvalidOperation, ValueError):
        return str(value)


@register.filter
def status_label(status: str) -> str:
    from warenhaus.orders.models import OrderStatus

    try:
        return str(OrderStatus(status).label)
    except ValueError:
        return status


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.simple_tag(takes_context=True)
def can_do(context, capability: str) -> bool:
    from warenhaus.accounts.roles import can

    request = context.get("request")
    return bool(request and can(request.user, capability))


@register.simple_tag(takes_context=True)
def path_in_default_language(context) -> str:
    """This page's address without a language prefix, for the language switcher.

    Django's ``set_language`` runs in the default language (its URL has no prefix) and can only
    translate addresses it can resolve there, i.e. unprefixed ones; from those it builds the
    address in any language.
    """
    from django.conf import settings
    from django.urls import translate_url

    request = context.get("request")
    if request is None:
        return "/"
    return translate_url(request.get_full_path(), settings.LANGUAGE_CODE)


@register.filter
def shipping_label(code: str) -> str:
    from warenhaus.checkout.shipping import METHODS

    m = METHODS.get(code)
    return str(m.label) if m else code


@register.filter
def payment_label(code: str) -> str:
    from warenhaus.web.forms import PAYMENT_CHOICES

    return str(dict(PAYMENT_CHOICES).get(code, code))


@register.filter
def pretty_json(value) -> str:
    import json

    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True, default=str)


@register.filter
def audit_changes(entry) -> dict:
    """Before and after of an audit entry, narrowed to the keys that changed when both are
    objects, so a product update shows the one field that moved and not the whole product."""
    before, after = entry.before, entry.after
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
        if keys:
            return {
                "before": {k: before.get(k) for k in keys if k in before},
                "after": {k: after.get(k) for k in keys if k in after},
            }
    return {"before": before, "after": after}


@register.filter
def price_from(product) -> dict:
    """The lowest active variant price of a product and whether the variants' prices differ
    (then the card says "from")."""
    prices = [v.price for v in product.variants.all() if v.is_active]
    if not prices:
        return {"price": None, "varies": False}
    return {"price": min(prices), "varies": len(set(prices)) > 1}


@register.filter
def kv_lines(value) -> str:
    """A before/after snapshot as ``key: value`` lines, easier to scan than JSON."""
    import json

    if value is None:
        return ""
    if not isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    lines = []
    for k in sorted(value):
        v = value[k]
        text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
        lines.append(f"{k}: {text}")
    return "\n".join(lines)
