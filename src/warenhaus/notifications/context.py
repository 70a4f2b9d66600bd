"""A mail's template context, stored on its outbox row and brought back at send time.

Callers of :func:`~warenhaus.notifications.services.enqueue_mail` pass domain objects
(``{"order": order, "lines": [...]}``). The row keeps them as JSON: a model instance becomes a
reference ``{"__model__": "orders.order", "pk": 7}``, a list (or queryset) of instances a list of
references, and plain JSON values stay what they are. Decimals, datetimes and dates are tagged
(``{"__decimal__": "18.99"}``) so that a template gets the same type back that the caller passed.

At send time :func:`resolve` loads every referenced object again, one query per model, so the
mail shows the objects as they are when it leaves. A referenced row that no longer exists is
:class:`MissingObject`: the message cannot be rendered, now or later.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from decimal import Decimal

from django.apps import apps
from django.db import models
from django.utils.dateparse import parse_date, parse_datetime

MODEL, PK = "__model__", "pk"
DECIMAL, DATETIME, DATE = "__decimal__", "__datetime__", "__date__"
_MARKERS = {MODEL, DECIMAL, DATETIME, DATE}


class MissingObject(LookupError):
    """A referenced object is gone; the message can never be rendered."""


def serialize(context: dict) -> dict:
    """``context`` as JSON-ready data. Raises TypeError or ValueError for a value that cannot
    be stored (an unsaved instance, an arbitrary object): a caller's bug, found by any test of
    the caller."""
    if not isinstance(context, dict):
        raise TypeError(f"a mail context is a dict, not {type(context).__name__}")
    return _dump(context, "context")


def _dump(value, where: str):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, models.Model):
        if value.pk is None:
            raise ValueError(
                f"{where}: an unsaved {value._meta.label} cannot be referenced from an outbox message"
            )
        pk = value.pk if isinstance(value.pk, (int, str)) else str(value.pk)
        return {MODEL: value._meta.label_lower, PK: pk}
    if isinstance(value, Decimal):
        return {DECIMAL: str(value)}
    if isinstance(value, datetime.datetime):
        return {DATETIME: value.isoformat()}
    if isinstance(value, datetime.date):
        return {DATE: value.isoformat()}
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: keys must be strings, got {key!r}")
            if key in _MARKERS:
                raise ValueError(f"{where}: the key {key!r} is reserved")
            out[key] = _dump(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple, models.QuerySet)):
        return [_dump(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise TypeError(
        f"{where}: {type(value).__name__} cannot be stored in an outbox message; pass a model instance or plain data"
    )


def resolve(data: dict) -> dict:
    """The context back, with every reference loaded from the database. Raises
    :class:`MissingObject` if a referenced row is gone."""
    wanted: dict[str, set] = {}
    for ref in _references(data):
        wanted.setdefault(ref[MODEL], set()).add(ref[PK])
    loaded: dict[tuple[str, object], models.Model] = {}
    for label, pks in wanted.items():
        try:
            model = apps.get_model(label)
        except LookupError as err:
            raise MissingObject(
                f"the context refers to {label}, which is not a model (any more)"
            ) from err
        pk_field = model._meta.pk
        found = model._base_manager.in_bulk([pk_field.to_python(pk) for pk in pks])
        for pk in pks:
            obj = found.get(pk_field.to_python(pk))
            if obj is None:
                raise MissingObject(f"{label} {pk} no longer exists")
            loaded[(label, pk)] = obj
    return _load(data, loaded)


def _references(value) -> Iterable[dict]:
    if isinstance(value, dict):
        if MODEL in value:
            yield value
        else:
            for item in value.values():
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _load(value, loaded: dict):
    if isinstance(value, list):
        return [_load(item, loaded) for item in value]
    if not isinstance(value, dict):
        return value
    if MODEL in value:
        return loaded[(value[MODEL], value[PK])]
    if DECIMAL in value:
        return Decimal(value[DECIMAL])
    if DATETIME in value:
        return parse_datetime(value[DATETIME])
    if DATE in value:
        return parse_date(value[DATE])
    return {key: _load(item, loaded) for key, item in value.items()}
