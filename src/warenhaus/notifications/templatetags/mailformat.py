"""Formatting for mails: amounts the way the recipient's language writes them.

Mails are rendered outside a request, so the active language (``translation.override`` in
:func:`warenhaus.notifications.services.render_mail`) decides: ``1.234,56 €`` in German,
``€1,234.56`` in English.
"""

from decimal import Decimal, InvalidOperation

from django import template
from django.utils import translation

from warenhaus.core.money import cents

register = template.Library()


@register.filter
def money(value, currency: str = "EUR") -> str:
    try:
        amount = cents(Decimal(str(value)))
    except (InvalidOperation, TypeError, ValueError):
        return ""
    language = (translation.get_language() or "de")[:2]
    sign = "-" if amount < 0 else ""
    text = f"{abs(amount):,.2f}"
    symbol = "€" if currency == "EUR" else currency
    if language == "de":
        text = text.replace(",", "X").replace(".", ",").replace("X", ".")
        return f"{sign}{text} {symbol}"
    return f"{sign}{symbol}{text}" if symbol == "€" else f"{sign}{text} {symbol}"


@register.filter
def percent(value) -> str:
    try:
        number = Decimal(str(value)).normalize()
    except (InvalidOperation, TypeError, ValueError):
        return ""
    text = f"{number:f}"
    if (translation.get_language() or "de")[:2] == "de":
        return f"{text.replace('.', ',')} %"
    return f"{text}%"


@register.filter
def ljust(value, width) -> str:
    """Pad to a column in plain-text mails."""
    return str(value).ljust(int(width))


@register.filter
def rjust(value, width) -> str:
    return str(value).rjust(int(width))
