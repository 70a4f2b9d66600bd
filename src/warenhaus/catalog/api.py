"""The catalog over the API: browsing for everyone, editing for staff with the right role."""

from __future__ import annotations

from typing import Any, Literal

from ninja import Schema
from pydantic import Field, StrictBool

from warenhaus.core.apiutil import AUTH, ApiRouter, Limit, paginate, require, whole_number
from warenhaus.core.errors import NotFound
from warenhaus.core.schemas import (
    Currency,
    MoneyOut,
    Out,
    Page,
    PositiveMoney,
    PositiveMoneyIn,
    Sku,
    Text,
    problems,
)

from . import selectors, services

router = ApiRouter(tags=["catalog"])

OnHand = whole_number(0, services.MAX_ON_HAND, code="invalid_quantity")


VatRate = Literal["19", "7"]


class VariantIn(Schema):
    sku: Sku
    title: str = Field(default="", max_length=200)
    price: PositiveMoneyIn = Field(description="Gross price")
    on_hand: OnHand = 0


class ProductIn(Schema):
    title: Text = Field(max_length=200)
    category: str = Field(max_length=120, description="Category slug")
    slug: str = Field(
        default="",
        max_length=160,
        description="empty: made from the title (a title without letters or digits needs one)",
    )
    description: str = Field(default="", max_length=20000)
    brand: str = Field(default="", max_length=100)
    vat_rate: VatRate = "19"
    is_active: StrictBool = True
    variants: list[VariantIn] = Field(min_length=1, max_length=100)


class ProductPatch(Schema):
    title: Text | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=20000)
    brand: str | None = Field(default=None, max_length=100)
    category: str | None = Field(default=None, max_length=120)
    vat_rate: VatRate | None = None
    is_active: StrictBool | None = None


class PriceIn(PositiveMoney):
    """The new gross price (a Money) with the reason for the change."""

    currency: Currency = "EUR"
    reason: str = Field(default="", max_length=2000)


class StockIn(Schema):
    on_hand: OnHand
    reason: str = Field(default="", max_length=2000)


class VariantOut(Out):
    sku: str
    title: str
    price: MoneyOut
    available: int = Field(description="units that can be bought now")


class ProductOut(Out):
    slug: str
    title: str
    description: str
    brand: str
    category: str = Field(description="category slug")
    category_name: str
    vat_rate: str = Field(examples=["19"])
    is_active: bool
    variants: list[VariantOut]


class StockOut(Out):
    sku: str
    on_hand: int
    allocated: int
    available: int


def _lang(request) -> str:
    return getattr(request, "LANGUAGE_CODE", "de") or "de"


@router.get(
    "/products",
    response={200: Page[ProductOut], **problems()},
    summary="Search products by text and category",
)
def list_products(
    request,
    q: str = "",
    category: str = "",
    limit: Limit = 20,
    cursor: str | None = None,
):
    qs = selectors.search(q=q[:100], category=category[:120])
    return 200, paginate(
        qs,
        limit=limit,
        cursor=cursor,
        render=lambda p: selectors.product_json(p, language=_lang(request)),
    )


@router.get(
    "/products/{slug}",
    response={200: ProductOut, **problems(404)},
    summary="One product with its variants",
)
def get_product(request, slug: str):
    product = selectors.product_by_slug(slug)
    if product is None:
        raise NotFound(f"No product '{slug}'.", code="product_not_found")
    return 200, selectors.product_json(product, language=_lang(request))


@router.post(
    "/products",
    response={201: ProductOut, **problems(409, auth=True)},
    summary="Create a product (role catalog)",
    openapi_extra=AUTH,
)
def create_product(request, payload: ProductIn):
    user = require(request, "catalog.edit")
    product = services.create_product(
        actor=user,
        **payload.model_dump(exclude={"variants"}),
        variants=[{**v.model_dump(), "price": v.price.amount} for v in payload.variants],
    )
    return 201, selectors.product_json(
        selectors.product_by_slug(product.slug, include_inactive=True)
    )


@router.patch(
    "/products/{slug}",
    response={200: ProductOut, **problems(404, auth=True)},
    summary="Change a product's texts, category, VAT rate or visibility (role catalog)",
    openapi_extra=AUTH,
)
def patch_product(request, slug: str, payload: ProductPatch):
    user = require(request, "catalog.edit")
    changes: dict[str, Any] = payload.model_dump(exclude_unset=True)
    product = services.update_product(actor=user, slug=slug, changes=changes)
    return 200, selectors.product_json(
        selectors.product_by_slug(product.slug, include_inactive=True)
    )


@router.put(
    "/variants/{sku}/price",
    response={200: VariantOut, **problems(404, auth=True)},
    summary="Set a variant's gross price (role pricing)",
    openapi_extra=AUTH,
)
def put_price(request, sku: str, payload: PriceIn):
    user = require(request, "price.edit")
    variant = services.set_price(actor=user, sku=sku, amount=payload.amount, reason=payload.reason)
    variant = type(variant).objects.select_related("stock").get(pk=variant.pk)
    return 200, selectors.variant_json(variant)


@router.put(
    "/variants/{sku}/stock",
    response={200: StockOut, **problems(404, 409, auth=True)},
    summary="Set the units on hand (role catalog)",
    openapi_extra=AUTH,
)
def put_stock(request, sku: str, payload: StockIn):
    user = require(request, "stock.edit")
    stock = services.set_stock(actor=user, sku=sku, on_hand=payload.on_hand, reason=payload.reason)
    return 200, {
        "sku": sku,
        "on_hand": stock.on_hand,
        "allocated": stock.allocated,
        "available": stock.available,
    }
