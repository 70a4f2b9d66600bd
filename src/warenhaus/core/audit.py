"""The audit trail: ``record()`` is called by every service that acts for staff or sellers."""

from __future__ import annotations

import json
from decimal import Decimal

from django.core.serializers.json import DjangoJSONEncoder

from .models import AuditEntry, AuditSource


def _jsonable(value):
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, default=str))


def record(
    *,
    actor,
    action: str,
    obj=None,
    object_type: str = "",
    object_id: str = "",
    before=None,
    after=None,
    reason: str = "",
    source: str = AuditSource.API,
) -> AuditEntry:
    row = entry(
        actor=actor,
        action=action,
        obj=obj,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
        reason=reason,
        source=source,
    )
    row.save(force_insert=True)
    return row


def record_many(entries: list[AuditEntry]) -> None:
    """Write entries made with :func:`entry` in one statement (bulk actions on many objects)."""
    AuditEntry.objects.bulk_create(entries, batch_size=1000)


def entry(
    *,
    actor,
    action: str,
    obj=None,
    object_type: str = "",
    object_id: str = "",
    before=None,
    after=None,
    reason: str = "",
    source: str = AuditSource.API,
) -> AuditEntry:
    """An audit entry, not yet written."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(getattr(obj, "audit_key", None) or obj.pk)
    return AuditEntry(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_email=getattr(actor, "email", "") or "",
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=_jsonable(before),
        after=_jsonable(after),
        reason=reason or "",
        source=source,
    )


def snapshot(obj, fields) -> dict:
    out = {}
    for f in fields:
        v = getattr(obj, f)
        out[f] = str(v) if isinstance(v, Decimal) else v
    return out
