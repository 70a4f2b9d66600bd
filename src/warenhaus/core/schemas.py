"""The shapes every router shares: money, the problem object, lists, and the problem answers a
route documents. The OpenAPI document is built from these, so a generated client knows the
shape of every answer, including refusals."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from ninja import Schema
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from .money import MoneyError, parse_amount

#: the currencies the shop takes and shows (one shop, one currency)
Currency = Literal["EUR"]

#: a decimal string from 0 to 999999.99: no sign, no exponent, no leading zeros, at most two
#: decimals (the same rule as ``money.parse_amount``, written so a schema can state it)
AMOUNT_PATTERN = r"^(0|[1-9][0-9]{0,5})(\.[0-9]{1,2})?$"
#: the same, above zero
POSITIVE_AMOUNT_PATTERN = r"^([1-9][0-9]{0,5}(\.[0-9]{1,2})?|0\.(0[1-9]|[1-9][0-9]?))$"
MONEY_SHAPE = '{"amount": "12.50", "currency": "EUR"}'


def _amount(pattern: str, *, positive: bool):
    """An amount checked against ``pattern``; outside it the problem ``invalid_money`` (422)."""
    compiled = re.compile(pattern, re.ASCII)

    def check(value: str) -> str:
        try:
            if not compiled.fullmatch(value):
                parse_amount(value, allow_zero=not positive)  # its message says what is wrong
                raise MoneyError(
                    "amount must be a decimal string from 0.01 to 999999.99 without leading zeros"
                    if positive
                    else "amount must be a decimal string from 0 to 999999.99 without leading zeros"
                )
        except MoneyError as err:
            raise PydanticCustomError("invalid_money", str(err), {"problem_status": 422}) from None
        return value

    return Annotated[
        str,
        AfterValidator(check),
        WithJsonSchema(
            {
                "type": "string",
                "pattern": pattern,
                "maxLength": 9,
                "examples": ["12.50"],
                "description": "a decimal string, never a float",
            }
        ),
    ]


def _money_object(value: Any) -> Any:
    """A bare amount where money is expected is refused with the shape it should have had."""
    if not isinstance(value, dict) and not isinstance(value, Schema):
        raise PydanticCustomError(
            "money_shape",
            "money is an object {shape}, not {given}",
            {"shape": MONEY_SHAPE, "given": type(value).__name__},
        )
    return value


class Money(Schema):
    """An amount of money: ``{"amount": "12.50", "currency": "EUR"}``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [MONEY_SHAPE]})

    amount: _amount(AMOUNT_PATTERN, positive=False)  # type: ignore[valid-type]
    currency: Currency

    def decimal_text(self) -> str:
        """The amount as the services take it."""
        return self.amount


class PositiveMoney(Money):
    """An amount of money above zero (prices, budgets, floors)."""

    amount: _amount(POSITIVE_AMOUNT_PATTERN, positive=True)  # type: ignore[valid-type]


#: money fields of input schemas: the object, or a 422 that names the object's shape
MoneyIn = Annotated[Money, BeforeValidator(_money_object)]
PositiveMoneyIn = Annotated[PositiveMoney, BeforeValidator(_money_object)]


class MoneyOut(BaseModel):
    """An amount of money as the API answers it."""

    amount: str = Field(examples=["12.50"], description="a decimal string with two decimals")
    currency: Currency


class Out(BaseModel):
    """The base of every answer's schema: the fields named are always there; an answer may
    carry more (listed in the README), which a client ignores. A plain pydantic model, so
    that fields beyond the named ones reach the client."""

    model_config = ConfigDict(extra="allow")


class Problem(Out):
    """An RFC 9457 problem (``application/problem+json``) with a stable machine-readable
    ``code``; some problems add fields of their own (``errors``, ``retry_after``, ...)."""

    type: str = Field(examples=["https://warenhaus.example/problems/out_of_stock"])
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    code: str = Field(examples=["out_of_stock"])


T = TypeVar("T")


class Page(Out, Generic[T]):
    """One page of a list; ``next_cursor`` is null on the last page."""

    items: list[T]
    next_cursor: str | None


#: what every route may answer besides its own problems
COMMON_PROBLEMS = (422, 429)


def problems(*statuses: int, auth: bool = False) -> dict[int, type[Problem]]:
    """The problem answers of a route, for its ``response=`` mapping: the statuses given, 422
    (input that breaks the schema) and 429 (load and abuse limits); with ``auth``, 401 and
    403 too."""
    wanted = set(statuses) | set(COMMON_PROBLEMS)
    if auth:
        wanted |= {401, 403}
    return dict.fromkeys(sorted(wanted), Problem)


def matching(pattern: str, *, code: str, message: str, max_length: int, status: int = 422):
    """A string that fully matches ``pattern`` (stated in the schema); anything else is the
    problem ``code`` with ``status``, as the service would have answered it."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if len(value) > max_length:
            raise PydanticCustomError(
                "string_too_long", "at most {max_length} characters", {"max_length": max_length}
            )
        if not compiled.fullmatch(value):
            raise PydanticCustomError(code, message, {"problem_status": status})
        return value

    return Annotated[
        str,
        AfterValidator(check),
        WithJsonSchema({"type": "string", "pattern": f"^(?:{pattern})$", "maxLength": max_length}),
    ]


#: a SKU: letters, digits, dot, dash and underscore, starting with a letter or digit
Sku = matching(
    r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
    code="invalid_sku",
    message="A SKU is 1 to 64 letters, digits, '.', '-' or '_', starting with a letter or digit.",
    max_length=64,
)
#: text that must say something: a character that is not white space (nor the separators
#: U+001C..U+001F, which Python's ``strip`` removes as well)
Text = Annotated[str, Field(pattern=r"[^\s\x1c-\x1f]")]


# --- shapes two routers answer -----------------------------------------------------------------


class VatShare(Out):
    rate: str = Field(examples=["19"])
    amount: MoneyOut


class Totals(Out):
    """Gross amounts; ``vat`` is contained in ``total``, split by rate in ``vat_breakdown``."""

    subtotal: MoneyOut
    discount: MoneyOut
    shipping: MoneyOut
    vat: MoneyOut
    vat_breakdown: list[VatShare]
    total: MoneyOut


class OrderLine(Out):
    sku: str
    title: str
    quantity: int
    unit_price: MoneyOut
    vat_rate: str
    line_total: MoneyOut


class OrderEvent(Out):
    at: str = Field(description="ISO 8601 with offset")
    from_: str | None = Field(alias="from")
    to: str
    reason: str | None = Field(default=None, description="staff only")


class PaymentOut(Out):
    method: str
    status: str
    amount: MoneyOut


class OrderOut(Out):
    """An order (``history`` and ``payments`` on the order itself, not in lists)."""

    number: str = Field(examples=["WH-7K3M9QX2"])
    status: str
    email: str
    channel: str
    placed_at: str = Field(description="ISO 8601 with offset")
    shipping_address: dict[str, Any]
    shipping_method: str
    payment_method: str
    lines: list[OrderLine]
    totals: Totals
    history: list[OrderEvent] | None = None
    payments: list[PaymentOut] | None = None


#: a decimal string above zero that is not money (a percentage, a share)
PositiveDecimal = _amount(POSITIVE_AMOUNT_PATTERN, positive=True)


#: a reason that goes into the audit trail: something other than white space
Reason = matching(
    r"[\s\S]*[^\s\x1c-\x1f][\s\S]*",
    code="reason_required",
    message="Please give a reason; it goes into the audit trail.",
    max_length=2000,
)


#: a percentage above 0 up to 100, a decimal string with at most two decimals
Percent = matching(
    r"100(\.00?)?|[1-9][0-9]?(\.[0-9]{1,2})?|0\.(0[1-9]|[1-9][0-9]?)",
    code="validation_error",
    message='a percentage between 0 and 100 as a decimal string, e.g. "50"',
    max_length=6,
)


def _in_utc(value: datetime) -> datetime:
    """Any offset the client gives, as UTC (PostgreSQL takes offsets only up to 15:59)."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "datetime_range", "the time is outside the years 1 to 9999"
        ) from None


#: a time with its offset (ISO 8601), kept in UTC
UtcDateTime = Annotated[AwareDatetime, AfterValidator(_in_utc)]
