"""``warenhaus demo`` loads a believable German shop, through the services, and only once."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from warenhaus.accounts.models import User
from warenhaus.accounts.roles import ROLES, roles_of
from warenhaus.catalog.models import Category, Product, Variant
from warenhaus.core.models import AuditEntry
from warenhaus.demo import load as demo
from warenhaus.inventory.models import Stock
from warenhaus.notifications.models import OutboxMessage
from warenhaus.orders.models import Order

SKU = re.compile(r"^[A-Z]{2}-[A-Z]{2}-\d{4}(-[A-Z0-9]+)*$")


def counts() -> dict:
    return {
        m.__name__: m.objects.count()
        for m in (Category, Product, Variant, Stock, User, Order, OutboxMessage, AuditEntry)
    }


@pytest.fixture
def loaded(db):
    return demo.load()


def test_the_catalog_is_big_and_plausible(loaded):
    assert loaded.products_total >= 200 and loaded.products_created == loaded.products_total
    assert Product.objects.count() >= 200 and Variant.objects.count() > Product.objects.count()
    tree = {
        c.slug: c.parent.slug if c.parent else None
        for c in Category.objects.select_related("parent")
    }
    for leaf, parent in {
        "smartphones": "elektronik",
        "laptops": "elektronik",
        "fernseher": "elektronik",
        "audio": "elektronik",
        "sofas": "moebel",
        "schraenke": "moebel",
        "tische": "moebel",
        "stuehle": "moebel",
        "kueche": "haushalt",
        "haushalt-kaffee": "haushalt",
        "reinigung": "haushalt",
        "kaffee-tee": "lebensmittel",
    }.items():
        assert tree[leaf] == parent
        assert Product.objects.filter(category__slug=leaf).count() >= 8, leaf
    assert set(
        Product.objects.filter(category__parent__slug__in=["lebensmittel", "buecher"]).values_list(
            "vat_rate", flat=True
        )
    ) == {Decimal("7.00")}
    assert set(
        Product.objects.filter(category__parent__slug="elektronik").values_list(
            "vat_rate", flat=True
        )
    ) == {Decimal("19.00")}
    skus = list(Variant.objects.values_list("sku", flat=True))
    assert all(SKU.match(s) for s in skus), [s for s in skus if not SKU.match(s)][:5]
    assert Variant.objects.filter(sku__regex=r"^EL-SM-0001-\d+-[A-Z]{2}$").exists()
    cents = {str(p)[-2:] for p in Variant.objects.values_list("price", flat=True)}
    assert cents <= {"99", "95", "00"}
    on_hand = list(Stock.objects.values_list("on_hand", flat=True))
    assert min(on_hand) == 0 and max(on_hand) <= 200
    assert 0 < sum(1 for n in on_hand if n == 0) < len(on_hand) / 4, "some, not most, are sold out"
    assert all(p.description and p.brand for p in Product.objects.all()[:50])


def test_every_role_has_a_working_login(loaded):
    logins = {email: password for email, password, _ in loaded.logins}
    for role in ROLES:
        staff = [u for u in User.objects.filter(is_staff=True) if role in roles_of(u)]
        assert staff, f"no demo login for role {role}"
        user = authenticate(email=staff[0].email, password=logins[staff[0].email])
        assert user is not None and role in roles_of(user)


def test_shoppers_have_orders_in_several_states(loaded):
    logins = {email: password for email, password, _ in loaded.logins}
    for shopper in demo.SHOPPERS:
        user = authenticate(email=shopper["email"], password=logins[shopper["email"]])
        assert user is not None and not user.is_staff
        assert Order.objects.filter(user=user).exists(), shopper["email"]
    statuses = set(Order.objects.values_list("status", flat=True))
    assert {"shipped", "cancelled", "delivered", "paid", "awaiting_payment"} <= statuses
    assert set(Order.objects.values_list("payment_method", flat=True)) == {"invoice", "test"}
    # Their mails are in the outbox, as real use would leave them: one confirmation per order.
    assert OutboxMessage.objects.filter(kind="order_confirmation").count() == Order.objects.count()
    assert (
        OutboxMessage.objects.filter(kind="order_shipped").count()
        == Order.objects.filter(status__in=["shipped", "delivered"]).count()
    )
    assert (
        OutboxMessage.objects.filter(kind="order_cancelled").count()
        == Order.objects.filter(status="cancelled").count()
    )
    # and staff actions are audited with their actor
    assert AuditEntry.objects.filter(
        action="order.ship", actor_email="support@warenhaus.example"
    ).exists()
    assert (
        AuditEntry.objects.filter(
            action="product.create", actor_email="catalog@warenhaus.example"
        ).count()
        == loaded.products_total
    )


def test_loading_twice_adds_nothing(loaded):
    before = counts()
    again = demo.load()
    assert counts() == before
    assert (
        again.products_created,
        again.staff_created,
        again.shoppers_created,
        again.orders_created,
    ) == (0, 0, 0, 0)
    assert len(again.logins) == len(loaded.logins)


def test_the_command_loads_and_prints_urls_and_logins(db, capsys):
    call_command("wh_demo", "--no-serve")
    out = capsys.readouterr().out
    for expected in (
        "http://127.0.0.1:8000/",
        "/console/",
        "/api/v1/docs",
        "admin@warenhaus.example",
        "admin-demo-pass",
        "erika@example.de",
    ):
        assert expected in out
    assert Product.objects.count() >= 200
    first = counts()
    call_command("wh_demo", "--no-serve")
    assert counts() == first


@pytest.mark.django_db(
    transaction=True
)  # flush truncates, which PostgreSQL refuses mid-transaction
def test_reset_starts_from_an_empty_database(make_product):
    stray = make_product(title="Nicht aus der Demo")
    call_command("wh_demo", "--no-serve", "--reset")
    assert not Product.objects.filter(slug=stray.slug).exists()
    assert Product.objects.count() >= 200


def test_flash_deals_to_try_one_running_one_coming(loaded):
    from warenhaus.deals.models import Deal
    from warenhaus.deals.services import state_of

    deals = list(Deal.objects.select_related("variant").order_by("starts_at"))
    assert [state_of(d) for d in deals] == ["live", "scheduled"]
    assert [pk for pk, _, _ in loaded.deals] == [d.pk for d in deals]
    for d in deals:
        assert d.deal_price < d.regular_price == d.variant.price and str(d.deal_price).endswith(
            ".99"
        )
        assert (
            Stock.objects.get(variant=d.variant).allocated >= d.units
        )  # the contingent is taken from stock
    assert AuditEntry.objects.filter(action="deal.create").count() == 2
    again = demo.load()
    assert (
        again.deals_created == 0 and Deal.objects.count() == 2
    )  # loading again keeps the running ones
