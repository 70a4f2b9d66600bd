"""Exact limits under concurrency (MISSION 1), on PostgreSQL with real threads: many checkouts
with the same voucher race; the campaign's total limit, a code's uses, the money budget and the
per-customer limit each hold exactly, and the losers are refused with the specific code.

PostgreSQL allows 100 connections here, so 200 checkouts are raced by 50 threads with their own
connections, released at once by a barrier, each placing four orders back to back."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.concurrency.support import run_together
from warenhaus.checkout import vouchers as cart_vouchers

try:
    from tests.conftest import requires_postgres
except ImportError:
    from conftest import requires_postgres

pytestmark = [
    pytest.mark.postgres,
    requires_postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("pg-concurrency"),
]

THREADS = 50
PER_THREAD = 4
CHECKOUTS = THREADS * PER_THREAD
ADDRESS = {
    "name": "Erika Mustermann",
    "street": "Heidestraße 17",
    "postal_code": "51147",
    "city": "Köln",
    "country": "DE",
}


@pytest.fixture
def seed_variant(transactional_db):
    from warenhaus.catalog.services import create_category, create_product

    def make(*, on_hand: int, price: str):
        cat = create_category(slug="gutschein-rennen", name="Rennen", name_en="Race")
        product = create_product(
            actor=None,
            title="Rennware",
            category=cat.slug,
            variants=[{"sku": "VOUCHER-RACE-1", "price": price, "on_hand": on_hand}],
        )
        return product.variants.get()

    return make


@pytest.fixture
def setup(transactional_db, seed_variant):
    from warenhaus.accounts.services import create_staff
    from warenhaus.core.clock import now
    from warenhaus.promotions import services

    author = create_staff(
        email="autor@warenhaus.example",
        password="Geheim-Passwort-1",
        roles=["promotions"],
        name="A",
    )
    approver = create_staff(
        email="freigabe@warenhaus.example",
        password="Geheim-Passwort-1",
        roles=["promotions_approver"],
        name="B",
    )

    def make(*, code="RENNEN10", import_max_uses=None, **fields):
        body = {
            "discount_kind": "fixed",
            "discount_value": "10.00",
            "min_basket": "30.00",
            "valid_until": now() + timedelta(days=1),
            **fields,
        }
        mode = "unique" if import_max_uses else "public"
        c = services.create_campaign(
            actor=author,
            name="Rennen",
            code_mode=mode,
            public_code="" if import_max_uses else code,
            **body,
        )
        if import_max_uses:
            services.import_codes(
                campaign_id=c.pk, actor=author, codes=[code], max_uses_per_code=import_max_uses
            )
        services.approve_campaign(campaign_id=c.pk, actor=approver, override_reason="Lasttest")
        variant = seed_variant(on_hand=CHECKOUTS * 2, price="49.97")
        carts = []
        from warenhaus.checkout import services as checkout

        for _ in range(CHECKOUTS):
            cart, _ = checkout.create_cart()
            checkout.add_line(cart_id=cart.id, sku=variant.sku, quantity=1)
            cart_vouchers.apply_voucher(cart_id=cart.id, code=code)
            carts.append(cart.id)
        return c, carts

    return make


def _race(carts, email_of):
    from warenhaus.checkout.services import place_order
    from warenhaus.core.errors import DomainError

    def thread(t):
        out = []
        for j in range(PER_THREAD):
            i = t * PER_THREAD + j
            try:
                order = place_order(
                    cart_id=carts[i],
                    email=email_of(i),
                    shipping_address=ADDRESS,
                    payment_method="invoice",
                    channel="api",
                )
            except DomainError as err:
                out.append(("refused", err.code))
            else:
                out.append(("ok", order.number, order.discount))
        return out

    results = run_together(THREADS, thread)
    flat = []
    for r in results:
        assert isinstance(r, list), r
        flat.extend(r)
    assert len(flat) == CHECKOUTS
    return flat


def _check(campaign, flat, *, winners: int, refusal: str):
    from warenhaus.orders.models import Order
    from warenhaus.promotions.models import Campaign, Redemption

    ok = [r for r in flat if r[0] == "ok"]
    refused = {r[1] for r in flat if r[0] == "refused"}
    assert len(ok) == winners, (len(ok), refused)
    assert refused == {refusal}, refused
    assert all(r[2] == Decimal("10.00") for r in ok)
    c = Campaign.objects.get(pk=campaign.pk)
    assert c.redeemed_count == winners and c.spent_amount == Decimal("10.00") * winners
    assert Redemption.objects.filter(campaign=c).count() == winners
    assert Order.objects.count() == winners
    assert Order.objects.filter(discount=Decimal("10.00")).count() == winners


@pytest.mark.parametrize("kind", ["campaign_limit", "code_uses"])
def test_a_code_limited_to_40_uses_gives_exactly_40_orders(setup, kind):
    if kind == "campaign_limit":
        campaign, carts = setup(total_limit=40, budget="100000.00")
    else:
        campaign, carts = setup(code="PARTNERRENNEN", import_max_uses=40, budget="100000.00")
    flat = _race(carts, lambda i: f"kunde{i}@example.de")
    _check(campaign, flat, winners=40, refusal="voucher_exhausted")
    from warenhaus.promotions.models import Code

    if kind == "code_uses":
        assert Code.objects.get(campaign=campaign).uses == 40


def test_the_budget_holds_exactly(setup):
    campaign, carts = setup(budget="250.00")
    flat = _race(carts, lambda i: f"kunde{i}@example.de")
    _check(campaign, flat, winners=25, refusal="voucher_budget_exhausted")


def test_the_per_customer_limit_holds_exactly(setup):
    from warenhaus.promotions.models import CustomerUsage

    campaign, carts = setup(per_customer_limit=3, budget="100000.00", total_limit=1000)
    flat = _race(carts, lambda i: f"kunde{i % 5}@example.de")  # five customers, 40 attempts each
    _check(campaign, flat, winners=15, refusal="limit_per_customer")
    assert (
        sorted(CustomerUsage.objects.filter(campaign=campaign).values_list("uses", flat=True))
        == [3] * 5
    )


def test_the_press_case_unapproved_codes_never_redeem_genuine_ones_all_do(
    transactional_db, seed_variant
):
    """The incident at small scale: 40 codes of campaigns nobody approved (put into carts behind
    the cart service's back, as if they had slipped in) and genuine approved single-use codes;
    200 checkouts race over web and phone. None of the 40 redeems; every genuine one does."""
    from warenhaus.accounts.services import create_staff
    from warenhaus.checkout import services as checkout
    from warenhaus.checkout.services import place_order
    from warenhaus.core.clock import now
    from warenhaus.core.errors import DomainError
    from warenhaus.promotions import services
    from warenhaus.promotions.models import CartVoucher, Code, Redemption

    author = create_staff(
        email="autor2@warenhaus.example",
        password="Geheim-Passwort-1",
        roles=["promotions"],
        name="A",
    )
    approver = create_staff(
        email="freigabe2@warenhaus.example",
        password="Geheim-Passwort-1",
        roles=["promotions_approver"],
        name="B",
    )
    agent = create_staff(
        email="telefon@warenhaus.example", password="Geheim-Passwort-1", roles=["support"], name="C"
    )
    until = now() + timedelta(days=1)
    leaked = []
    for i in range(40):
        c = services.create_campaign(
            actor=author,
            name=f"Leck {i}",
            discount_kind="fixed",
            discount_value="400.00",
            min_basket="401.00",
            code_mode="public",
            public_code=f"LECK{i:02d}X",
            valid_until=until,
        )
        leaked.append(Code.objects.get(campaign=c))
    genuine = services.create_campaign(
        actor=author,
        name="Echt",
        discount_kind="fixed",
        discount_value="10.00",
        min_basket="30.00",
        code_mode="unique",
        budget="10000.00",
        total_limit=1000,
        valid_until=until,
    )
    services.approve_campaign(campaign_id=genuine.pk, actor=approver)
    _b, genuine_codes = services.generate_codes(
        campaign_id=genuine.pk, actor=author, count=CHECKOUTS // 2
    )
    variant = seed_variant(on_hand=CHECKOUTS * 2, price="449.97")
    carts = []
    for i in range(CHECKOUTS):
        cart, _ = checkout.create_cart()
        checkout.add_line(cart_id=cart.id, sku=variant.sku, quantity=1)
        if i % 2:
            CartVoucher.objects.create(cart=cart, code=leaked[i % 40])
        else:
            cart_vouchers.apply_voucher(cart_id=cart.id, code=genuine_codes[i // 2])
        carts.append(cart.id)

    def thread(t):
        out = []
        for j in range(PER_THREAD):
            i = t * PER_THREAD + j
            phone = (i // 2) % 2 == 1
            try:
                order = place_order(
                    cart_id=carts[i],
                    user=agent if phone else None,
                    email=f"kunde{i}@example.de",
                    shipping_address=ADDRESS,
                    payment_method="invoice",
                    channel="phone" if phone else "web",
                )
            except DomainError as err:
                out.append((i, "refused", err.code))
            else:
                out.append((i, "ok", order.discount))
        return out

    flat = [r for rs in run_together(THREADS, thread) for r in rs]
    assert len(flat) == CHECKOUTS
    assert {(r[1], r[2]) for r in flat if r[0] % 2} == {("refused", "voucher_not_approved")}
    assert {(r[1], r[2]) for r in flat if not r[0] % 2} == {("ok", Decimal("10.00"))}
    assert not Redemption.objects.exclude(campaign=genuine).exists()
    assert Redemption.objects.filter(campaign=genuine).count() == CHECKOUTS // 2
    assert set(Redemption.objects.values_list("channel", flat=True)) == {"web", "phone"}
