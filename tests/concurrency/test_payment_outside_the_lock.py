"""The card is asked outside the stock lock: while one shopper's card takes two seconds to
answer, a second checkout of the same SKU goes through at once. Real threads, each with its
own connection, on PostgreSQL (SQLite serialises writers and would prove nothing)."""

from __future__ import annotations

import time

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

ADDRESS = {
    "name": "Erika Mustermann",
    "street": "Heidestraße 17",
    "postal_code": "51147",
    "city": "Köln",
    "country": "DE",
}
SLOW_CARD_SECONDS = 2.0


def test_a_slow_card_does_not_block_the_next_checkout_of_the_same_sku(seed_variant, settings):
    from warenhaus.checkout import services as checkout
    from warenhaus.inventory.models import Stock
    from warenhaus.orders.models import Order

    settings.TEST_CARD_DELAY_SECONDS = SLOW_CARD_SECONDS
    variant = seed_variant(on_hand=10)
    carts = []
    for _ in range(2):
        cart, _ = checkout.create_cart()
        checkout.add_line(cart_id=cart.id, sku=variant.sku, quantity=1)
        carts.append(cart.id)

    def shop(i):
        if i == 1:  # the second shopper comes while the first one's card is being asked
            time.sleep(0.3)
        started = time.monotonic()
        order = checkout.place_order(
            cart_id=carts[i],
            email=f"shopper{i}@example.de",
            shipping_address=ADDRESS,
            payment_method="test" if i == 0 else "invoice",
            payment_token="approve",
        )
        return ("ok", order.number, order.status, time.monotonic() - started, time.monotonic())

    slow, fast = run_together(2, shop)
    assert slow[0] == "ok" and fast[0] == "ok", (slow, fast)
    assert slow[2] == "paid" and slow[3] >= SLOW_CARD_SECONDS
    # the second was done while the first still waited for its card (with the card asked
    # under the stock lock, it waited for that answer and finished after the first)
    assert fast[2] == "awaiting_payment" and fast[4] < slow[4] - 0.5, (slow, fast)
    assert Stock.objects.get(variant=variant).allocated == 2
    assert Order.objects.filter(status__in=["paid", "awaiting_payment"]).count() == 2


def test_two_slow_cards_of_the_same_sku_are_asked_side_by_side(seed_variant, settings):
    from warenhaus.checkout import services as checkout

    settings.TEST_CARD_DELAY_SECONDS = SLOW_CARD_SECONDS
    variant = seed_variant(on_hand=10)
    carts = []
    for _ in range(4):
        cart, _ = checkout.create_cart()
        checkout.add_line(cart_id=cart.id, sku=variant.sku, quantity=1)
        carts.append(cart.id)
    started = time.monotonic()
    results = run_together(
        4,
        lambda i: (
            checkout.place_order(
                cart_id=carts[i],
                email=f"shopper{i}@example.de",
                shipping_address=ADDRESS,
                payment_method="test",
                payment_token="approve",
            ).status
        ),
    )
    assert results == ["paid"] * 4
    assert time.monotonic() - started < 3 * SLOW_CARD_SECONDS  # not 4 x 2 s one after another
