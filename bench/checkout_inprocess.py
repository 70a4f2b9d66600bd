"""Statements and CPU of one API order (cart, line, invoice checkout), in process on a fresh
SQLite file: compares two trees without gunicorn, PostgreSQL or the network.

    PYTHONPATH=<tree>/src .venv/bin/python bench/checkout_inprocess.py [--orders 300]

Prints the statements of each step of one order, then the CPU per order over ``--orders``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from decimal import Decimal
from pathlib import Path


def setup_django(db_dir: str) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{Path(db_dir) / 'bench.db'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warenhaus.settings")
    for name in ("SECRET_KEY", "VOUCHER_CODE_SECRET", "GOODWILL_CODE_SECRET"):
        os.environ[name] = f"{name.lower()}-bench-only-" + "x" * 32
    os.environ["DEBUG"] = "0"
    os.environ["ALLOWED_HOSTS"] = "testserver,localhost"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed() -> None:
    from warenhaus.catalog.models import Category, Product, Variant
    from warenhaus.inventory.models import Stock

    category = Category.objects.create(name="C", slug="c")
    product = Product.objects.create(title="P", slug="p", category=category)
    variant = Variant.objects.create(product=product, sku="SKU-1", price=Decimal("49.97"))
    Stock.objects.create(variant=variant, on_hand=1_000_000)


ADDRESS = {
    "name": "Erika Mustermann",
    "street": "Heidestr. 1",
    "postal_code": "51147",
    "city": "Köln",
    "country": "DE",
}


def one_order(client, i: int, *, count: bool = False) -> list[int]:
    """Place one order; with ``count``, the statements of each step."""
    from contextlib import nullcontext

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def CaptureQueriesContext(conn, _capture=CaptureQueriesContext):  # noqa: N802
        return _capture(conn) if count else nullcontext([])

    counts = []
    with CaptureQueriesContext(connection) as q:
        cart_id = client.post("/api/v1/carts", content_type="application/json").json()["id"]
    counts.append(len(q))
    with CaptureQueriesContext(connection) as q:
        client.post(
            f"/api/v1/carts/{cart_id}/lines",
            {"sku": "SKU-1", "quantity": 1},
            content_type="application/json",
        )
    counts.append(len(q))
    body = {"email": f"e{i}@example.de", "shipping_address": ADDRESS, "payment_method": "invoice"}
    with CaptureQueriesContext(connection) as q:
        resp = client.post(
            f"/api/v1/carts/{cart_id}/checkout",
            body,
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"k{i}",
        )
    counts.append(len(q))
    if resp.status_code != 201:
        raise SystemExit(f"checkout answered {resp.status_code}: {resp.content[:300]!r}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as db_dir:
        setup_django(db_dir)
        seed()
        from django.test import Client

        client = Client()
        for i in range(30):  # warm-up
            one_order(client, i)
        cart, line, checkout = one_order(client, 30, count=True)
        print(f"statements: cart {cart}, line {line}, checkout {checkout}")
        started = time.process_time()
        for i in range(31, 31 + args.orders):
            one_order(client, i)
        spent = (time.process_time() - started) / args.orders * 1000
        print(f"cpu ms per order {spent:.2f}")


if __name__ == "__main__":
    main()
