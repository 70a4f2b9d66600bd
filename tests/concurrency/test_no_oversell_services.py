"""No unit is sold twice (MISSION 3): many shoppers checking out the last units at the same
moment, each in its own thread with its own database connection, through the one service that
places orders. Proved on PostgreSQL; SQLite serialises writers and would prove nothing."""

from __future__ import annotations

import pytest

from .support import run_together

try:
    from tests.conftest import requires_postgres
except ImportError:  # tests/ is not a package; pytest puts it on sys.path as the rootdir conftest
    from conftest import requires_postgres

pytestmark = [
    pytest.mark.postgres,
    requires_postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("pg-concurrency"),
]

SHOPPERS = 52
ADDRESS = {
    "name": "Erika Mustermann",
    "street": "Heidestraße 17",
    "postal_code": "51147",
    "city": "Köln",
    "country": "DE",
}


def _carts(skus_per_cart, quantity=1):
    """One anonymous cart per shopper with ``quantity`` of each SKU, added in the given order."""
    from warenhaus.checkout import services as checkout

    carts = []
    for skus in skus_per_cart:
        cart, _ = checkout.create_cart()
        for sku in skus:
            checkout.add_line(cart_id=cart.id, sku=sku, quantity=quantity)
        carts.append(cart.id)
    return carts


def _checkout(cart_id, i):
    """Place the order; return ("ok", number) or ("refused", code). Anything else propagates and
    is reported by run_together as an exception, which the tests reject."""
    from warenhaus.checkout.services import place_order
    from warenhaus.core.errors import DomainError

    try:
        order = place_order(
            cart_id=cart_id,
            email=f"shopper{i}@example.de",
            shipping_address=ADDRESS,
            payment_method="invoice",
        )
    except DomainError as err:
        return ("refused", err.code)
    return ("ok", order.number)


def _stock(variant):
    from warenhaus.inventory.models import Stock

    return Stock.objects.get(variant=variant)


def _assert_only_domain_outcomes(results):
    unexpected = [r for r in results if not (isinstance(r, tuple) and r[0] in {"ok", "refused"})]
    assert not unexpected, "threads failed with something other than a domain error:\n" + "\n".join(
        r[2] for r in unexpected if r and r[0] == "exception"
    )


@pytest.mark.parametrize("payment_method", ["invoice", "test"])
def test_fifty_shoppers_ten_units_exactly_ten_orders(seed_variant, payment_method):
    from warenhaus.checkout.services import place_order
    from warenhaus.core.errors import DomainError
    from warenhaus.orders.models import Order, OrderLine

    variant = seed_variant(on_hand=10)
    carts = _carts([[variant.sku]] * SHOPPERS)

    def buy(i):
        try:
            order = place_order(
                cart_id=carts[i],
                email=f"shopper{i}@example.de",
                shipping_address=ADDRESS,
                payment_method=payment_method,
            )
        except DomainError as err:
            return ("refused", err.code)
        return ("ok", order.number)

    results = run_together(SHOPPERS, buy)

    _assert_only_domain_outcomes(results)
    winners = [r[1] for r in results if r[0] == "ok"]
    losers = [r[1] for r in results if r[0] == "refused"]
    assert len(winners) == 10
    assert len(set(winners)) == 10
    assert losers == ["out_of_stock"] * (SHOPPERS - 10)

    stock = _stock(variant)
    assert stock.allocated == 10 == stock.on_hand
    assert stock.on_hand >= 0 and stock.allocated >= 0
    assert Order.objects.count() == 10
    assert sum(OrderLine.objects.filter(variant=variant).values_list("quantity", flat=True)) == 10
    # the losers' carts are still open and can be changed or retried; the winners' are closed
    from warenhaus.checkout.models import Cart, CartStatus

    assert Cart.objects.filter(status=CartStatus.ORDERED).count() == 10
    assert Cart.objects.filter(status=CartStatus.OPEN).count() == SHOPPERS - 10


def test_multi_unit_orders_never_split_the_last_units(seed_variant):
    """Three units each of ten: three orders win (nine units), the tenth unit stays unsold
    rather than a fourth order getting a partial allocation."""
    from warenhaus.orders.models import Order

    variant = seed_variant(on_hand=10)
    carts = _carts([[variant.sku]] * SHOPPERS, quantity=3)

    results = run_together(SHOPPERS, lambda i: _checkout(carts[i], i))

    _assert_only_domain_outcomes(results)
    assert sum(1 for r in results if r[0] == "ok") == 3
    assert {r[1] for r in results if r[0] == "refused"} == {"out_of_stock"}
    stock = _stock(variant)
    assert (stock.on_hand, stock.allocated) == (10, 9)
    assert Order.objects.count() == 3


def test_two_items_in_opposite_order_neither_deadlock_nor_oversell(seed_variant):
    """Half the shoppers add A then B, half B then A. Allocation locks rows in variant-id order,
    so nobody deadlocks; each order gets both items or nothing."""
    from warenhaus.orders.models import OrderLine

    a = seed_variant(on_hand=10)
    b = seed_variant(on_hand=7)
    carts = _carts([[a.sku, b.sku] if i % 2 else [b.sku, a.sku] for i in range(SHOPPERS)])

    results = run_together(SHOPPERS, lambda i: _checkout(carts[i], i))

    _assert_only_domain_outcomes(results)
    codes = {r[1] for r in results if r[0] == "refused"}
    assert codes == {"out_of_stock"}, codes  # in particular no deadlock or serialisation error
    winners = sum(1 for r in results if r[0] == "ok")
    assert winners == 7
    sa, sb = _stock(a), _stock(b)
    assert (sa.allocated, sb.allocated) == (7, 7)
    assert sa.allocated <= sa.on_hand and sb.allocated <= sb.on_hand
    assert (
        OrderLine.objects.filter(variant=a).count()
        == OrderLine.objects.filter(variant=b).count()
        == 7
    )


def test_restocking_during_the_rush_sells_exactly_what_arrived(seed_variant):
    """Staff raise the stock from 10 to 15 while shoppers race: exactly 15 units are sold,
    never more, and the stock update never goes below what is allocated."""
    from warenhaus.inventory.services import set_on_hand

    variant = seed_variant(on_hand=10)
    carts = _carts([[variant.sku]] * SHOPPERS)

    def act(i):
        if i == 0:
            from warenhaus.catalog.models import Variant

            set_on_hand(
                variant=Variant.objects.get(pk=variant.pk),
                on_hand=15,
                actor=None,
                reason="delivery arrived",
            )
            return ("ok-restock", None)
        return _checkout(carts[i], i)

    results = run_together(SHOPPERS, act)

    assert results[0] == ("ok-restock", None), results[0]
    rest = results[1:]
    _assert_only_domain_outcomes(rest)
    sold = sum(1 for r in rest if r[0] == "ok")
    stock = _stock(variant)
    assert stock.on_hand == 15
    assert stock.allocated == sold
    assert 10 <= sold <= 15
    assert {r[1] for r in rest if r[0] == "refused"} <= {"out_of_stock"}
