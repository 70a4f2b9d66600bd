"""An alert's sentence and its monitor's name in the reader's language, for pages and mails.

Works on an :class:`~warenhaus.promotions.models.Alert` and on the plain items the alert mail
carries (``monitor``, ``measured``, ``threshold``, ``window_seconds``, ``message``)."""

from __future__ import annotations

from django import template

from warenhaus.promotions import monitors

register = template.Library()


def _get(item, key):
    return item.get(key) if isinstance(item, dict) else getattr(item, key, None)


@register.filter
def alert_sentence(item) -> str:
    m = monitors.monitor_named(_get(item, "monitor") or "")
    try:
        values = {k: float(_get(item, k)) for k in ("measured", "threshold")}
        window = int(_get(item, "window_seconds"))
    except (TypeError, ValueError):
        m = None
    if m is None:
        return _get(item, "message") or ""
    return m.describe(window_seconds=window, **values)


@register.filter
def monitor_label(name: str) -> str:
    return monitors.monitor_label(name or "")
