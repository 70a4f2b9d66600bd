"""Reading what callers send: times, whole numbers, money amounts and reasons.

Every service parses its inputs here, so one idea is read one way and refused with one problem
code: a time is ISO 8601 with an offset, a whole number is an ``int`` within named bounds (never a
``bool``), an amount is a plain decimal string (:func:`warenhaus.core.money.parse_amount`), a
reason is stripped text of at most :data:`REASON_MAX` characters. ``whole_number`` is the same
bound as an API input type, so the OpenAPI document names it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from django.utils.dateparse import parse_datetime
from pydantic import AfterValidator, BeforeValidator, StrictInt, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError

from warenhaus.core.errors import ValidationFailed
from warenhaus.core.money import MoneyError, parse_amount

REASON_MAX = 2000
REASON_DETAIL = "Please give a reason; it goes into the audit trail."
TIME_EXAMPLE = "2026-07-01T00:00:00+00:00"


def aware_time(
    raw,
    field: str,
    *,
    optional: bool = False,
    code: str = "validation_error",
    example: str | None = TIME_EXAMPLE,
) -> datetime | None:
    """A ``datetime`` with its offset, or an ISO 8601 text of one. Nothing (None, "") is None when
    ``optional``; anything else, a time without offset and an impossible one (30 February) are
    the problem ``code``."""
    if raw is None or raw == "":
        if optional:
            return None
        raise ValidationFailed(f"{field} is required.", code=code, field=field)
    try:
        value = raw if isinstance(raw, datetime) else parse_datetime(str(raw))
    except ValueError:  # well-formed but impossible: 30 February, hour 25, offset +99:00
        value = None
    if value is None or value.tzinfo is None:
        hint = f", e.g. {example}" if example else ""
        raise ValidationFailed(
            f"{field} must be an ISO 8601 time with offset{hint}.", code=code, field=field
        )
    return value


def whole(
    raw, field: str, *, low: int, high: int, optional: bool = False, note: str = ""
) -> int | None:
    """An ``int`` from ``low`` to ``high`` (a ``bool`` is none); None stays None when
    ``optional``. ``note`` ends the problem's text, e.g. "(or omitted for no limit)"."""
    if raw is None and optional:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        high_text = f"{high:,}" if note else str(high)
        raise ValidationFailed(
            f"{field} must be a whole number from {low} to {high_text}{' ' + note if note else ''}.",
            code="validation_error",
            field=field,
        )
    return raw


def amount(
    raw, field: str | None = None, *, allow_zero: bool = True, optional: bool = False
) -> Decimal | None:
    """A money amount (see :func:`parse_amount`); nothing (None, "") is None when ``optional``,
    else zero. Refused as ``invalid_money``, its text led by ``field`` when one is named."""
    if raw is None or raw == "":
        if optional:
            return None
        raw = "0"
    try:
        return parse_amount(raw, allow_zero=allow_zero)
    except MoneyError as err:
        if field is None:
            raise ValidationFailed(str(err), code="invalid_money") from None
        raise ValidationFailed(f"{field}: {err}", code="invalid_money", field=field) from None


def reason(raw, *, required: bool = True, detail: str = REASON_DETAIL) -> str:
    """Why a person acts (for the audit trail): stripped, at most :data:`REASON_MAX` characters;
    none at all is ``reason_required`` unless not ``required``."""
    text = (raw or "").strip()[:REASON_MAX]
    if required and not text:
        raise ValidationFailed(detail, code="reason_required")
    return text


def _integral(value):
    """``3.0`` is the whole number 3, as JSON Schema counts it; ``3.5`` and ``"3"`` stay wrong."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def whole_number(
    low: int, high: int, *, code: str = "validation_error", status: int = 422, strict: bool = True
):
    """The type of a whole-number input from ``low`` to ``high``: the OpenAPI document names both
    bounds, and a number outside them is the problem ``code`` (with ``status``), never a number
    too large for the database. ``strict=False`` for query parameters, which arrive as text."""

    def within(value: int, info: ValidationInfo) -> int:
        if not low <= value <= high:
            raise PydanticCustomError(
                code,
                "{field} must be a whole number from {low} to {high}.",
                {"field": info.field_name, "low": low, "high": high, "problem_status": status},
            )
        return value

    return Annotated[
        StrictInt if strict else int,
        BeforeValidator(_integral),
        AfterValidator(within),
        WithJsonSchema({"type": "integer", "minimum": low, "maximum": high}),
    ]
