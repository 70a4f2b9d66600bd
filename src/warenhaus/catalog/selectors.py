"""Reading the catalog: search, product pages, and the public shape of a product."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from warenhaus.core.money import money_json

from .models import Category, Product, Variant


def active_products() -> QuerySet[Product]:
    return (
        Product.objects.filter(is_active=True)
        .select_related("category")
        .prefetch_related(
            Prefetch(
                "variants", queryset=Variant.objects.filter(is_active=True).select_related("stock")
            )
        )
    )


def search(*, q: str = "", category: str = "", include_inactive: bool = False) -> QuerySet[Product]:
    qs = (
        active_products()
        if not include_inactive
        else Product.objects.select_related("category").prefetch_related(
            Prefetch("variants", queryset=Variant.objects.select_related("stock"))
        )
    )
    q = (q or "").strip()[:100]
    if q:
        for word in q.split()[:8]:
            qs = qs.filter(
                Q(title__icontains=word)
                | Q(brand__icontains=word)
                | Q(description__icontains=word)
                | Q(variants__sku__iexact=word)
            )
        qs = qs.distinct()
    if category:
        cat = Category.objects.filter(slug=category).first()
        if cat is None:
            return qs.none()
        qs = qs.filter(category_id__in=cat.descendant_ids())
    return qs.order_by("id")


def product_by_slug(slug: str, *, include_inactive: bool = False) -> Product | None:
    qs = (
        active_products()
        if not include_inactive
        else Product.objects.select_related("category").prefetch_related("variants__stock")
    )
    return qs.filter(slug=slug).first()


def variant_available(variant: Variant) -> int:
    stock = getattr(variant, "stock", None)
    return stock.available if stock is not None else 0


def variant_json(variant: Variant) -> dict:
    return {
        "sku": variant.sku,
        "title": variant.title,
        "price": money_json(variant.price),
        "available": variant_available(variant) if variant.is_active else 0,
    }


def product_json(product: Product, *, language: str = "de") -> dict:
    return {
        "slug": product.slug,
        "title": product.title,
        "description": product.description,
        "brand": product.brand,
        "category": product.category.slug,
        "category_name": product.category.localized_name(language),
        "vat_rate": f"{product.vat_rate:.0f}",
        "is_active": product.is_active,
        "variants": [variant_json(v) for v in product.variants.all()],
    }


def categories_tree() -> list[Category]:
    return list(Category.objects.filter(parent__isnull=True).prefetch_related("children"))


def category_by_slug(slug: str) -> Category | None:
    return (
        Category.objects.filter(slug=slug)
        .select_related("parent")
        .prefetch_related("children")
        .first()
    )
