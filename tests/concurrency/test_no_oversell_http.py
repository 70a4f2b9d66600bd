"""The rush through the real front door: the production server (gunicorn, several worker
processes with threads) on the test database, hit by many concurrent HTTP clients. A shopper
gets either an order (201) or a clear problem (409 ``out_of_stock``), never a 5xx (MISSION 3),
and an order retried with the same Idempotency-Key is placed once. When more arrive than the
server can serve, the admission limiter answers 429 with Retry-After and the clients submit again
with the same key, as a browser or an app does."""

from __future__ import annotations

import uuid

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

SHOPPERS = 60
BODY = {
    "email": "erika@example.de",
    "shipping_address": {
        "name": "Erika Mustermann",
        "street": "Heidestraße 17",
        "postal_code": "51147",
        "city": "Köln",
        "country": "DE",
    },
    "payment_method": "invoice",
}


def _client(server):
    import httpx

    return httpx.Client(base_url=f"{server.base_url}/api/v1", timeout=60)


def _cart_with(server, sku, quantity=1) -> str:
    with _client(server) as http:
        r = http.post("/carts")
        assert r.status_code == 201, r.text
        cart_id = r.json()["id"]
        r = http.post(f"/carts/{cart_id}/lines", json={"sku": sku, "quantity": quantity})
        assert r.status_code == 200, r.text
        return cart_id


#: 429 answers seen (the admission limiter turning a rush away for a moment): each must carry
#: Retry-After and the code ``overloaded``; the client waits and submits again with the same key
REFUSED: list[tuple[int, str, str]] = []


def _post_checkout(server, cart_id, key, body=BODY, attempts: int = 40):
    """Submit as a well-behaved client does: on 429, wait what Retry-After says (capped, with
    jitter) and submit again with the same Idempotency-Key."""
    import random
    import time

    with _client(server) as http:
        for _ in range(attempts):
            r = http.post(f"/carts/{cart_id}/checkout", json=body, headers={"Idempotency-Key": key})
            if r.status_code != 429:
                break
            REFUSED.append(
                (r.status_code, r.headers.get("Retry-After", ""), r.json().get("code", ""))
            )
            time.sleep(
                min(float(r.headers.get("Retry-After") or 1), 1.0) * random.uniform(0.2, 1.0)
            )
    try:
        data = r.json()
    except ValueError:
        data = {"raw": r.text[:500]}
    return r.status_code, data, dict(r.headers)


@pytest.fixture(autouse=True)
def _refusals_are_well_formed():
    REFUSED.clear()
    yield
    assert all(ra and code == "overloaded" for _, ra, code in REFUSED), REFUSED[:5]


def test_sixty_concurrent_http_checkouts_for_ten_units(live_gunicorn, seed_variant):
    from warenhaus.inventory.models import Stock
    from warenhaus.orders.models import Order

    variant = seed_variant(on_hand=10)
    carts = [_cart_with(live_gunicorn, variant.sku) for _ in range(SHOPPERS)]

    results = run_together(
        SHOPPERS, lambda i: _post_checkout(live_gunicorn, carts[i], str(uuid.uuid4()))
    )

    crashed = [r for r in results if r[0] == "exception"]
    assert not crashed, crashed[0][2] + "\n--- server log ---\n" + live_gunicorn.log()
    statuses = sorted(r[0] for r in results)
    assert not [s for s in statuses if s >= 500], (
        f"5xx answers: {statuses}\n--- server log ---\n{live_gunicorn.log()}"
    )
    created = [r for r in results if r[0] == 201]
    refused = [r for r in results if r[0] != 201]
    assert len(created) == 10, statuses
    assert len({r[1]["number"] for r in created}) == 10
    assert all(r[0] == 409 and r[1]["code"] == "out_of_stock" for r in refused), [
        (r[0], r[1].get("code")) for r in refused
    ]
    assert all(r[2]["content-type"].startswith("application/problem+json") for r in refused)

    stock = Stock.objects.get(variant=variant)
    assert stock.allocated == 10 == stock.on_hand
    assert Order.objects.count() == 10


def test_concurrent_retries_with_one_idempotency_key_place_one_order(live_gunicorn, seed_variant):
    """Ten identical submits of one checkout (a double-click storm, a client retrying on
    timeout) race each other. PostgreSQL makes the later inserts of the key wait for the first
    transaction, so every one of them is answered with the first one's 201 and order number:
    one order, one allocation, nine replays marked ``Idempotent-Replayed``."""
    from warenhaus.inventory.models import Stock
    from warenhaus.orders.models import Order

    variant = seed_variant(on_hand=10)
    cart_id = _cart_with(live_gunicorn, variant.sku, quantity=2)
    key = str(uuid.uuid4())

    results = run_together(10, lambda i: _post_checkout(live_gunicorn, cart_id, key))

    crashed = [r for r in results if r[0] == "exception"]
    assert not crashed, crashed[0][2]
    assert [r[0] for r in results] == [201] * 10, [(r[0], r[1].get("code")) for r in results]
    numbers = {r[1]["number"] for r in results}
    assert len(numbers) == 1
    replayed = [r for r in results if r[2].get("idempotent-replayed") == "true"]
    assert len(replayed) == 9
    assert Order.objects.count() == 1
    assert Order.objects.get().number == numbers.pop()
    assert Stock.objects.get(variant=variant).allocated == 2

    # Afterwards the same key still answers with the same order; a changed body is refused.
    status, data, headers = _post_checkout(live_gunicorn, cart_id, key)
    assert status == 201 and data["number"] == Order.objects.get().number
    assert headers.get("idempotent-replayed") == "true"
    status, data, _ = _post_checkout(
        live_gunicorn, cart_id, key, body={**BODY, "email": "other@example.de"}
    )
    assert (status, data["code"]) == (422, "idempotency_key_reused")
    assert Order.objects.count() == 1


def test_the_same_cart_with_different_keys_is_ordered_once(live_gunicorn, seed_variant):
    """Two tabs, two keys, one cart: one order; the others learn the cart is closed."""
    from warenhaus.inventory.models import Stock
    from warenhaus.orders.models import Order

    variant = seed_variant(on_hand=10)
    cart_id = _cart_with(live_gunicorn, variant.sku)

    results = run_together(10, lambda i: _post_checkout(live_gunicorn, cart_id, str(uuid.uuid4())))

    assert not [r for r in results if r[0] == "exception"]
    assert sorted(r[0] for r in results) == [201] + [409] * 9, [
        (r[0], r[1].get("code")) for r in results
    ]
    assert {r[1]["code"] for r in results if r[0] == 409} == {"cart_closed"}
    assert Order.objects.count() == 1
    assert Stock.objects.get(variant=variant).allocated == 1
