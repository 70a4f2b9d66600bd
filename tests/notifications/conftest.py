"""Fixtures for the outbox: a real SMTP server, a movable clock, and the worker loop."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.smtp import smtp_server  # noqa: F401  (a fixture)


class Clock:
    """Moves "now" for the shop and for the task queue alike (both ask django.utils.timezone)."""

    def __init__(self, monkeypatch):
        self.offset = timedelta()
        real_now = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: real_now() + self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def run_worker(queues=("default", "mail"), max_rounds: int = 100) -> list:
    """Run every task that is ready now, the way ``warenhaus worker`` does (same claim, same
    run_task), in this thread and this test's transaction. Returns the tasks' return values."""
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    worker = Worker(
        queue_names=list(queues),
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    )
    results = []
    for _ in range(max_rounds):
        row = DBTaskResult.objects.ready().filter(queue_name__in=queues).first()
        if row is None:
            return results
        row.claim(worker.worker_id)
        worker.run_task(row)
        row.refresh_from_db()
        assert row.status == "SUCCESSFUL", row.traceback
        results.append(row.return_value)
    raise AssertionError("the worker did not run dry")


@pytest.fixture
def worker():
    return run_worker


@pytest.fixture
def place_order(db, make_product, address):
    """``place_order(payment_method=..., items=[(variant, qty)], email=..., language=...)`` through
    the checkout service, as a shopper would."""
    from warenhaus.checkout import services as checkout

    default_items = []

    def place(
        *,
        items=None,
        payment_method="invoice",
        email="erika@example.de",
        language="de",
        user=None,
        token="",
    ):
        if items is None:
            if not default_items:
                coffee = make_product(
                    title="Espresso Bohnen 1 kg", price="18.99", vat_rate="7", on_hand=50
                ).variants.get()
                phone = make_product(
                    title="Smartphone Nova 8", price="499.00", on_hand=5
                ).variants.get()
                default_items.extend([(coffee, 2), (phone, 1)])
            items = default_items
        cart, _ = checkout.create_cart(user=user)
        for variant, qty in items:
            checkout.add_line(cart_id=cart.id, user=user, sku=variant.sku, quantity=qty)
        return checkout.place_order(
            cart_id=cart.id,
            user=user,
            email=email,
            shipping_address=address,
            payment_method=payment_method,
            payment_token=token,
            language=language,
        )

    return place
