"""Changing the catalog: products, variants and prices. Every change is audited."""

from __future__ import annotations

import re
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from warenhaus.core import audit, parsing
from warenhaus.core.clock import now
from warenhaus.core.errors import Conflict, NotFound, ValidationFailed
from warenhaus.inventory.models import Stock

from .models import Category, PriceChange, Product, Variant

PRODUCT_FIELDS = ["slug", "title", "description", "brand", "category_id", "vat_rate", "is_active"]


def _vat(rate) -> Decimal:
    try:
        value = Decimal(str(rate)).quantize(Decimal("0.01"))
    except Exception:
        raise ValidationFailed("vat_rate must be 19 or 7.", code="invalid_vat_rate") from None
    if value not in (Decimal("19.00"), Decimal("7.00")):
        raise ValidationFailed("vat_rate must be 19 or 7.", code="invalid_vat_rate")
    return value


def _price(raw) -> Decimal:
    return parsing.amount(raw, allow_zero=False)


def _category(slug: str) -> Category:
    cat = Category.objects.filter(slug=slug).first()
    if cat is None:
        raise ValidationFailed(f"Unknown category '{slug}'.", code="unknown_category")
    return cat


def create_product(
    *,
    actor,
    title: str,
    category: str,
    variants: list[dict],
    slug: str = "",
    description: str = "",
    brand: str = "",
    vat_rate="19",
    is_active: bool = True,
    source: str = "api",
) -> Product:
    title = (title or "").strip()
    if not title:
        raise ValidationFailed("A product needs a title.", code="title_required")
    if not variants:
        raise ValidationFailed("A product needs at least one variant.", code="variants_required")
    slug = slugify(slug or title)[:160]
    if not slug:
        raise ValidationFailed(
            "Could not derive a slug from the title; give one.", code="invalid_slug"
        )
    cat = _category(category)
    rate = _vat(vat_rate)
    try:
        with transaction.atomic():
            product = Product.objects.create(
                slug=slug,
                title=title[:200],
                description=description or "",
                brand=(brand or "")[:100],
                category=cat,
                vat_rate=rate,
                is_active=is_active,
            )
            for i, v in enumerate(variants):
                _add_variant(product, v, i, actor)
            audit.record(
                actor=actor,
                action="product.create",
                obj=product,
                after=product_snapshot(product),
                source=source,
            )
            return product
    except IntegrityError:
        raise Conflict(
            "A product with this slug or a variant with one of these SKUs exists already.",
            code="duplicate",
        ) from None


#: letters, digits, dot, dash and underscore, so a SKU is safe in every URL path
SKU_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
MAX_ON_HAND = 10_000_000


def _add_variant(product: Product, data: dict, position: int, actor) -> Variant:
    sku = (data.get("sku") or "").strip()
    if not SKU_PATTERN.fullmatch(sku):
        raise ValidationFailed(
            "A SKU is 1 to 64 letters, digits, '.', '-' or '_', starting with a letter or digit.",
            code="invalid_sku",
        )
    price = _price(data.get("price"))
    variant = Variant.objects.create(
        product=product,
        sku=sku,
        title=(data.get("title") or "")[:200],
        price=price,
        position=position,
    )
    on_hand = data.get("on_hand", 0) or 0
    if isinstance(on_hand, bool) or not isinstance(on_hand, int) or not 0 <= on_hand <= MAX_ON_HAND:
        raise ValidationFailed(
            f"on_hand must be a whole number between 0 and {MAX_ON_HAND:,}.",
            code="invalid_quantity",
        )
    Stock.objects.create(variant=variant, on_hand=on_hand)
    PriceChange.objects.create(
        variant=variant,
        old_price=None,
        new_price=price,
        changed_at=now(),
        changed_by=actor if getattr(actor, "pk", None) else None,
    )
    return variant


def product_snapshot(product: Product) -> dict:
    snap = audit.snapshot(product, PRODUCT_FIELDS)
    snap["variants"] = [
        {"sku": v.sku, "title": v.title, "price": str(v.price)} for v in product.variants.all()
    ]
    return snap


def update_product(*, actor, slug: str, changes: dict, source: str = "api") -> Product:
    allowed = {"title", "description", "brand", "category", "vat_rate", "is_active"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationFailed(
            f"Cannot change: {', '.join(sorted(unknown))}. Prices and stock have their own endpoints.",
            code="field_not_editable",
        )
    with transaction.atomic():
        product = Product.objects.select_for_update().filter(slug=slug).first()
        if product is None:
            raise NotFound(f"No product '{slug}'.", code="product_not_found")
        before = product_snapshot(product)
        if "title" in changes:
            title = (changes["title"] or "").strip()
            if not title:
                raise ValidationFailed("A product needs a title.", code="title_required")
            product.title = title[:200]
        if "description" in changes:
            product.description = changes["description"] or ""
        if "brand" in changes:
            product.brand = (changes["brand"] or "")[:100]
        if "category" in changes:
            product.category = _category(changes["category"])
        if "vat_rate" in changes:
            product.vat_rate = _vat(changes["vat_rate"])
        if "is_active" in changes:
            product.is_active = bool(changes["is_active"])
        product.save()
        audit.record(
            actor=actor,
            action="product.update",
            obj=product,
            before=before,
            after=product_snapshot(product),
            source=source,
        )
    return product


def set_price(*, actor, sku: str, amount, reason: str = "", source: str = "api") -> Variant:
    price = _price(amount)
    with transaction.atomic():
        variant = Variant.objects.select_for_update().filter(sku=sku).first()
        if variant is None:
            raise NotFound(f"No variant with SKU '{sku}'.", code="sku_not_found")
        old = variant.price
        if old == price:
            return variant
        variant.price = price
        variant.save(update_fields=["price"])
        PriceChange.objects.create(
            variant=variant,
            old_price=old,
            new_price=price,
            changed_at=now(),
            changed_by=actor if getattr(actor, "pk", None) else None,
        )
        audit.record(
            actor=actor,
            action="price.set",
            obj=variant,
            before={"price": str(old)},
            after={"price": str(price)},
            reason=reason,
            source=source,
        )
    return variant


def set_stock(*, actor, sku: str, on_hand: int, reason: str = "", source: str = "api"):
    from warenhaus.inventory.services import set_on_hand

    variant = Variant.objects.filter(sku=sku).first()
    if variant is None:
        raise NotFound(f"No variant with SKU '{sku}'.", code="sku_not_found")
    return set_on_hand(variant=variant, on_hand=on_hand, actor=actor, reason=reason, source=source)


def create_category(
    *, slug: str, name: str, name_en: str = "", parent: str | None = None, position: int = 0
) -> Category:
    parent_obj = Category.objects.get(slug=parent) if parent else None
    cat, _ = Category.objects.update_or_create(
        slug=slug,
        defaults={"name": name, "name_en": name_en, "parent": parent_obj, "position": position},
    )
    return cat
