"""Loading the demo shop through the services, so audit entries, stock records, price history,
order events and outbox mails are what real use would leave behind.

Idempotent: categories are upserted, products and accounts that exist are skipped, and a shopper
who has orders gets no new ones. Everything happens in one transaction (fast on SQLite, and a
failed load leaves nothing half-done).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

from django.db import transaction
from django.utils.text import slugify

from warenhaus.accounts.models import User
from warenhaus.accounts.roles import ROLES
from warenhaus.core.channels import Channel

from . import catalog

#: (e-mail, name, roles, password). Every role has a login; passwords are for the demo only.
STAFF = [
    ("admin@warenhaus.example", "Anna Admin", ["admin"], "admin-demo-pass"),
    ("catalog@warenhaus.example", "Carl Katalog", ["catalog"], "catalog-demo-pass"),
    ("pricing@warenhaus.example", "Petra Preis", ["pricing"], "pricing-demo-pass"),
    ("promotions@warenhaus.example", "Paul Aktion", ["promotions"], "promotions-demo-pass"),
    (
        "approver@warenhaus.example",
        "Frieda Freigabe",
        ["promotions_approver"],
        "approver-demo-pass",
    ),
    ("support@warenhaus.example", "Sven Service", ["support"], "support-demo-pass"),
    ("risk@warenhaus.example", "Rita Risiko", ["risk"], "risk-demo-pass"),
]

SHOPPERS = [
    {
        "email": "erika@example.de",
        "name": "Erika Mustermann",
        "password": "erika-demo-pass",
        "language": "de",
        "address": {
            "name": "Erika Mustermann",
            "street": "Heidestraße 17",
            "postal_code": "51147",
            "city": "Köln",
            "country": "DE",
        },
    },
    {
        "email": "max@example.de",
        "name": "Max Mustermann",
        "password": "max-demo-pass",
        "language": "de",
        "address": {
            "name": "Max Mustermann",
            "street": "Torstraße 112",
            "postal_code": "10119",
            "city": "Berlin",
            "country": "DE",
        },
    },
    {
        "email": "lena.schmidt@example.de",
        "name": "Lena Schmidt",
        "password": "lena-demo-pass",
        "language": "de",
        "address": {
            "name": "Lena Schmidt",
            "street": "Grindelallee 40",
            "postal_code": "20146",
            "city": "Hamburg",
            "country": "DE",
        },
    },
    {
        "email": "john.smith@example.com",
        "name": "John Smith",
        "password": "john-demo-pass",
        "language": "en",
        "address": {
            "name": "John Smith",
            "street": "Mariahilfer Straße 88",
            "postal_code": "1070",
            "city": "Wien",
            "country": "AT",
        },
    },
]

# Orders per shopper: items as (category, n-th in-stock variant, quantity), the payment method,
# and what happens afterwards (by the support account, through the order services).
ORDERS = {
    "erika@example.de": [
        ([("smartphones", 0, 1), ("kaffee-tee", 0, 2)], "invoice", "ship"),
        ([("romane", 2, 1), ("kochbuecher", 0, 1), ("suesswaren", 1, 3)], "test", None),
        ([("haushalt-kaffee", 1, 1)], "invoice", "cancel"),
    ],
    "max@example.de": [
        ([("laptops", 1, 1)], "test", "deliver"),
        ([("stuehle", 0, 4), ("tische", 0, 1)], "invoice", "paid"),
    ],
    "lena.schmidt@example.de": [
        ([("sofas", 2, 1)], "invoice", None),
        ([("kueche", 3, 1), ("reinigung", 0, 1), ("kaffee-tee", 5, 1)], "test", "ship"),
    ],
    "john.smith@example.com": [
        ([("audio", 1, 1), ("sachbuecher", 4, 1)], "test", None),
    ],
}
CANCEL_REASON = "Auf Wunsch der Kundin storniert."


@dataclass
class Summary:
    categories: int = 0
    products_created: int = 0
    products_total: int = 0
    variants_total: int = 0
    staff_created: int = 0
    shoppers_created: int = 0
    orders_created: int = 0
    orders_total: int = 0
    deals_created: int = 0
    deals: list[tuple[int, str, str]] = field(
        default_factory=list
    )  # (id, title, state) of the deals that run
    seconds: float = 0.0
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (e-mail, password, roles)


def load(*, log: Callable[[str], None] = lambda _: None) -> Summary:
    started = time.monotonic()
    summary = Summary()
    with transaction.atomic():
        staff = load_staff(summary)
        log(f"staff: {summary.staff_created} created, {len(STAFF)} in total")
        load_categories(summary)
        load_products(summary, actor=staff["catalog@warenhaus.example"])
        log(
            f"catalog: {summary.categories} categories, {summary.products_created} products created, {summary.products_total} in total ({summary.variants_total} variants)"
        )
        load_shoppers_and_orders(summary, support=staff["support@warenhaus.example"])
        log(
            f"shoppers: {summary.shoppers_created} created, {len(SHOPPERS)} in total; orders: {summary.orders_created} placed, {summary.orders_total} in total"
        )
        load_deals(summary, actor=staff["pricing@warenhaus.example"])
        log(f"flash deals: {summary.deals_created} created, {len(summary.deals)} running or coming")
    summary.seconds = time.monotonic() - started
    return summary


def load_staff(summary: Summary) -> dict[str, User]:
    from warenhaus.accounts.services import create_staff

    missing = set(ROLES) - {r for _, _, roles, _ in STAFF for r in roles}
    assert not missing, f"the demo has no login for role(s) {missing}"  # noqa: S101  (a check of the demo's own data)
    users = {}
    for email, name, roles, password in STAFF:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = create_staff(
                email=email, password=password, roles=roles, name=name, source="demo"
            )
            summary.staff_created += 1
        elif not user.check_password(password):  # a demo loaded before the password policy
            user = create_staff(
                email=email, password=password, roles=roles, name=name, source="demo"
            )
        users[email] = user
        summary.logins.append((email, password, ", ".join(roles)))
    return users


def load_categories(summary: Summary) -> None:
    from warenhaus.catalog.services import create_category

    for position, spec in enumerate(catalog.CATEGORIES):
        create_category(
            slug=spec.slug,
            name=spec.name,
            name_en=spec.name_en,
            parent=spec.parent,
            position=position,
        )
    summary.categories = len(catalog.CATEGORIES)


def load_products(summary: Summary, *, actor) -> None:
    from warenhaus.catalog.models import Product, Variant
    from warenhaus.catalog.services import create_product

    existing = set(Product.objects.values_list("slug", flat=True))
    for spec in catalog.products():
        if slugify(spec.title)[:160] in existing:
            continue
        create_product(
            actor=actor,
            title=spec.title,
            category=spec.category,
            brand=spec.brand,
            description=spec.description,
            vat_rate=spec.vat,
            variants=[
                {"sku": v.sku, "title": v.title, "price": v.price, "on_hand": v.on_hand}
                for v in spec.variants
            ],
            source="demo",
        )
        summary.products_created += 1
    summary.products_total = Product.objects.count()
    summary.variants_total = Variant.objects.count()


def _in_stock_skus(category: str, quantity: int) -> list[str]:
    from warenhaus.inventory.models import Stock

    rows = Stock.objects.filter(
        variant__product__category__slug=category, variant__is_active=True
    ).order_by("variant__sku")
    return [s.variant.sku for s in rows.select_related("variant") if s.available >= quantity]


def load_shoppers_and_orders(summary: Summary, *, support) -> None:
    from warenhaus.accounts.services import register_customer
    from warenhaus.checkout import services as checkout
    from warenhaus.orders import services as orders
    from warenhaus.orders.models import Order

    for shopper in SHOPPERS:
        user = User.objects.filter(email=shopper["email"]).first()
        if user is None:
            user = register_customer(
                email=shopper["email"],
                password=shopper["password"],
                name=shopper["name"],
                language=shopper["language"],
            )
            summary.shoppers_created += 1
        elif not user.check_password(
            shopper["password"]
        ):  # a demo loaded before the password policy
            user.set_password(shopper["password"])
            user.save(update_fields=["password"])
        summary.logins.append((shopper["email"], shopper["password"], "shopper"))
        if Order.objects.filter(user=user).exists():
            continue
        for items, payment, then in ORDERS.get(shopper["email"], []):
            cart, _ = checkout.create_cart(user=user)
            for category, nth, qty in items:
                skus = _in_stock_skus(category, qty)
                checkout.add_line(
                    cart_id=cart.id, user=user, sku=skus[nth % len(skus)], quantity=qty
                )
            order = checkout.place_order(
                cart_id=cart.id,
                user=user,
                email=user.email,
                shipping_address=shopper["address"],
                payment_method=payment,
                language=shopper["language"],
                channel=Channel.WEB,
            )
            summary.orders_created += 1
            if then == "ship":
                orders.ship(number=order.number, actor=support, source="demo")
            elif then == "deliver":
                orders.ship(number=order.number, actor=support, source="demo")
                orders.mark_delivered(number=order.number, actor=support, source="demo")
            elif then == "paid":
                orders.mark_paid(number=order.number, actor=support, source="demo")
            elif then == "cancel":
                orders.cancel(
                    number=order.number, actor=support, reason=CANCEL_REASON, source="demo"
                )
    summary.orders_total = Order.objects.count()


#: the demo's flash deals: (category, share of the regular price, units, limit per customer,
#: minutes from now to the start, hours it runs). One runs already (the waiting room and the
#: hold in the cart can be tried at once), one starts soon (the countdown and the pre-queue).
DEALS = [
    ("smartphones", Decimal("0.6"), 20, 1, -5, 48),
    ("haushalt-kaffee", Decimal("0.5"), 30, 2, 15, 24),
]


def load_deals(summary: Summary, *, actor) -> None:
    """Flash deals to try, through the services (audited, the contingent allocated from stock).
    Only when no deal is running or coming, so loading again later starts fresh ones."""
    from datetime import timedelta

    from warenhaus.catalog.models import Variant
    from warenhaus.core.clock import now
    from warenhaus.deals import services as deals
    from warenhaus.deals.models import Deal

    at = now()
    running = Deal.objects.filter(ends_at__gt=at, cancelled_at__isnull=True)
    if not running.exists():
        for category, share, units, limit, start_in, hours in DEALS:
            skus = _in_stock_skus(category, units + 5)
            if not skus:
                continue
            variant = Variant.objects.get(sku=skus[0])
            price = (variant.price * share).to_integral_value(rounding=ROUND_FLOOR) - Decimal(
                "0.01"
            )  # 49.99-style, below the regular price
            if price <= 0:
                continue
            start = at + timedelta(minutes=start_in)
            deals.create_deal(
                actor=actor,
                sku=variant.sku,
                deal_price=price,
                units=units,
                starts_at=start,
                ends_at=start + timedelta(hours=hours),
                limit_per_customer=limit,
                hold_minutes=10,
                source="demo",
            )
            summary.deals_created += 1
    summary.deals = [
        (d.pk, d.variant.product.title, deals.state_of(d, at))
        for d in running.select_related("variant__product").order_by("starts_at")
    ]
