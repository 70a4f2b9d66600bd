"""Remediation at the scale of the incident: preview and execute a job over 50,000 orders.

    .venv/bin/python bench/remediation.py [--orders 50000] [--genuine 10000] [--shipped-share 0.05]

What it does, in order:

1. drops and creates a PostgreSQL database for the bench (``--db``, default
   ``warenhaus_bench_remediation``) and migrates it;
2. seeds, in bulk: a leaked public code (approved) with ``--orders`` orders that used it, placed
   by guests of whom every fifth ordered twice, ``--shipped-share`` of them already shipped; and
   ``--genuine`` orders with genuine single-use codes of another campaign; every order with its
   line, its events, its (invoice) payment, its redemption, and stock allocated for what has not
   shipped;
3. measures the **preview** (``create_job(dry_run=True)``: the selection and every figure the
   console shows);
4. measures the **execution** in this process, as the worker runs it (``execute`` writes the
   items; ``run`` works them off): cancel every unshipped order, one notice per customer through
   the outbox, one goodwill code per customer. Reports orders per second over the whole run
   (items, cancellations, mails and codes included) and per phase;
5. checks the result: exactly the unshipped leaked orders cancelled, one notice and one code per
   affected customer, the genuine orders untouched, stock released.

Targets (issue 3): preview under 10 s, execution at 500 orders/s or more.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from checkout import recreate_database, warenhaus_cmd  # noqa: E402

TARGETS = {"preview_s": 10.0, "orders_per_s": 500.0}
ADDRESS = {
    "name": "Erika Mustermann",
    "street": "Heidestraße 17",
    "postal_code": "51147",
    "city": "Köln",
    "country": "DE",
}


def seed(orders: int, genuine: int, shipped_share: float) -> dict:
    from datetime import timedelta

    from django.db import transaction

    from warenhaus.accounts.services import create_staff
    from warenhaus.catalog.services import create_category, create_product
    from warenhaus.core.clock import now
    from warenhaus.inventory.models import Stock
    from warenhaus.orders.models import Order, OrderEvent, OrderLine, Payment
    from warenhaus.promotions import services as promotions
    from warenhaus.promotions.models import Campaign, Code, Redemption

    author = create_staff(
        email="autor@bench.example", password="Bench-Passwort-1", roles=["promotions"], name="A"
    )
    approver = create_staff(
        email="freigabe@bench.example",
        password="Bench-Passwort-1",
        roles=["promotions_approver"],
        name="B",
    )
    support = create_staff(
        email="support@bench.example", password="Bench-Passwort-1", roles=["support"], name="C"
    )
    create_staff(email="risk@bench.example", password="Bench-Passwort-1", roles=["risk"], name="D")
    cat = create_category(slug="bench", name="Lasttest", name_en="Load test")
    total = orders + genuine
    product = create_product(
        actor=None,
        title="Notebook 15",
        category=cat.slug,
        variants=[{"sku": "NB-15", "price": "449.97", "on_hand": total + 10}],
        source="bench",
    )
    variant = product.variants.get()
    until = now() + timedelta(days=7)
    leak = promotions.create_campaign(
        actor=author,
        name="Winter",
        discount_kind="fixed",
        discount_value="88.00",
        min_basket="100.00",
        code_mode="public",
        public_code="WINTER88",
        valid_until=until,
    )
    promotions.approve_campaign(
        campaign_id=leak.pk, actor=approver, override_reason="bench: the leak needs no budget"
    )
    real = promotions.create_campaign(
        actor=author,
        name="Echt",
        discount_kind="fixed",
        discount_value="10.00",
        min_basket="30.00",
        code_mode="unique",
        budget="999999.99",
        total_limit=genuine + 10,
        valid_until=until,
    )
    promotions.approve_campaign(campaign_id=real.pk, actor=approver)
    _b, _codes = promotions.generate_codes(
        campaign_id=real.pk, actor=author, count=min(genuine, 10_000)
    )
    leak_code = Code.objects.get(campaign=leak)
    real_codes = list(Code.objects.filter(campaign=real).values_list("pk", flat=True))
    at = now() - timedelta(hours=8)
    shipped_every = int(1 / shipped_share) if shipped_share > 0 else 0
    batch = 5000
    unshipped_units = 0
    for start in range(0, total, batch):
        with transaction.atomic():
            rows = []
            for i in range(start, min(start + batch, total)):
                leaked = i < orders
                customer = (i // 2 if i % 5 == 0 else i) if leaked else i
                status = (
                    "shipped"
                    if leaked and shipped_every and i % shipped_every == 1
                    else "awaiting_payment"
                )
                unshipped_units += status != "shipped"
                discount = Decimal("88.00") if leaked else Decimal("10.00")
                total_ = Decimal("449.97") - discount + Decimal("0.00")
                rows.append(
                    Order(
                        number=f"WH-B{i:08d}",
                        email=f"kunde{customer}@example.de",
                        status=status,
                        channel="web",
                        shipping_address=ADDRESS,
                        shipping_method="standard",
                        payment_method="invoice",
                        subtotal=Decimal("449.97"),
                        discount=discount,
                        shipping=Decimal("0.00"),
                        vat=(total_ * 19 / 119).quantize(Decimal("0.01")),
                        total=total_,
                        placed_at=at + timedelta(seconds=i * 0.5),
                        language="de",
                    )
                )
            made = Order.objects.bulk_create(rows)
            OrderLine.objects.bulk_create(
                [
                    OrderLine(
                        order=o,
                        variant=variant,
                        sku="NB-15",
                        title="Notebook 15",
                        unit_price=Decimal("449.97"),
                        quantity=1,
                        vat_rate=Decimal("19"),
                        line_total=Decimal("449.97"),
                    )
                    for o in made
                ]
            )
            OrderEvent.objects.bulk_create(
                [
                    OrderEvent(
                        order=o,
                        at=o.placed_at,
                        from_status="",
                        to_status="placed",
                        reason="order placed",
                    )
                    for o in made
                ]
                + [
                    OrderEvent(
                        order=o,
                        at=o.placed_at,
                        from_status="placed",
                        to_status="awaiting_payment",
                        reason="invoice",
                    )
                    for o in made
                ]
            )
            Payment.objects.bulk_create(
                [
                    Payment(
                        order=o,
                        gateway="invoice",
                        reference=f"INV-{o.number}",
                        amount=o.total,
                        status="pending",
                    )
                    for o in made
                ]
            )
            Redemption.objects.bulk_create(
                [
                    Redemption(
                        campaign=leak if o.discount == Decimal("88.00") else real,
                        code_id=leak_code.pk
                        if o.discount == Decimal("88.00")
                        else real_codes[n % len(real_codes)],
                        order=o,
                        redeemer_key=f"email:{o.email}",
                        amount=o.discount,
                        basket_value=o.subtotal,
                        channel="web",
                        guest=True,
                        created_at=o.placed_at,
                    )
                    for n, o in enumerate(made)
                ]
            )
    Stock.objects.filter(variant=variant).update(allocated=unshipped_units)
    Campaign.objects.filter(pk=leak.pk).update(
        redeemed_count=orders, spent_amount=Decimal("88.00") * orders
    )
    Campaign.objects.filter(pk=real.pk).update(
        redeemed_count=genuine, spent_amount=Decimal("10.00") * genuine
    )
    return {"support": support.pk, "leak": leak.pk, "real": real.pk, "variant": variant.pk}


def run(args) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warenhaus.settings")
    import django

    django.setup()
    from django.db import connection
    from django.db.models import Count

    from warenhaus.accounts.models import User
    from warenhaus.inventory.models import Stock
    from warenhaus.notifications.models import OutboxMessage
    from warenhaus.orders.models import Order
    from warenhaus.promotions.models import Code
    from warenhaus.remediation import services

    t0 = time.perf_counter()
    ids = seed(args.orders, args.genuine, args.shipped_share)
    seeded = time.perf_counter() - t0
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    support = User.objects.get(pk=ids["support"])
    risk = User.objects.get(
        email="risk@bench.example"
    )  # prepares; support executes (four eyes on goodwill)
    print(
        f"bench: seeded {args.orders} leaked + {args.genuine} genuine orders in {seeded:.1f} s",
        flush=True,
    )

    t = time.perf_counter()
    job = services.create_job(
        actor=risk,
        selector={"voucher_codes": ["WINTER88"]},
        actions=["cancel", "notify", {"goodwill_voucher": {"amount": "10.00"}}],
        reason="Bench: geleakter Code",
        dry_run=True,
    )
    preview_s = time.perf_counter() - t
    p = job.preview
    print(
        f"bench: preview in {preview_s:.2f} s: {p['orders']} orders, {p['customers']} customers, {p['out_of_reach']} shipped, {p['affected']['orders']} to cancel",
        flush=True,
    )

    marks = {}

    def progress(j):
        if j.phase == "customers" and "orders_done" not in marks:
            marks["orders_done"] = time.perf_counter()

    t = time.perf_counter()
    services.execute(job_id=job.pk, actor=support)
    start_s = time.perf_counter() - t
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        prof = cProfile.Profile()
        state = prof.runcall(services.run, job.pk, progress=progress)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
    else:
        state = services.run(job.pk, progress=progress)
    total_s = time.perf_counter() - t
    job.refresh_from_db()
    orders_phase = (marks.get("orders_done", time.perf_counter()) - t) if marks else None
    customers_phase = total_s - orders_phase if orders_phase is not None else None

    by_status = dict(Order.objects.values_list("status").annotate(n=Count("pk")))
    leaked_cancelled = Order.objects.filter(
        redemptions__campaign_id=ids["leak"], status="cancelled"
    ).count()
    genuine_touched = (
        Order.objects.filter(redemptions__campaign_id=ids["real"])
        .exclude(status="awaiting_payment")
        .count()
    )
    notices = OutboxMessage.objects.filter(kind="remediation_notice").count()
    codes = Code.objects.filter(campaign_id=job.goodwill_campaign_id).count()
    stock = Stock.objects.get(variant_id=ids["variant"])
    checks = {
        "state_done": state == "done",
        "cancelled_exactly_unshipped": leaked_cancelled
        == p["affected"]["orders"]
        == by_status.get("cancelled", 0),
        "genuine_untouched": genuine_touched == 0,
        "one_notice_per_customer": notices == p["affected"]["customers"],
        "one_code_per_customer": codes == p["affected"]["customers"],
        "stock_released": stock.allocated == args.genuine,
    }
    return {
        "orders_selected": p["orders"],
        "customers": p["customers"],
        "to_cancel": p["affected"]["orders"],
        "customers_affected": p["affected"]["customers"],
        "preview_s": round(preview_s, 2),
        "execute_call_s": round(start_s, 2),
        "run_s": round(total_s, 2),
        "orders_phase_s": round(orders_phase, 2) if orders_phase is not None else None,
        "customers_phase_s": round(customers_phase, 2) if customers_phase is not None else None,
        "orders_per_s": round(p["orders"] / total_s, 1),
        "cancelled": job.cancelled,
        "out_of_reach": job.out_of_reach,
        "notices": notices,
        "goodwill_codes": codes,
        "chunk": int(os.environ.get("REMEDIATION_CHUNK", "500")),
        "checks": checks,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--orders",
        type=int,
        default=50_000,
        help="orders that used the leaked code (default 50000)",
    )
    ap.add_argument(
        "--genuine",
        type=int,
        default=10_000,
        help="orders with genuine codes, to be left alone (default 10000)",
    )
    ap.add_argument(
        "--shipped-share",
        type=float,
        default=0.05,
        help="share of leaked orders already shipped (default 0.05)",
    )
    ap.add_argument(
        "--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
    )
    ap.add_argument("--db", default="warenhaus_bench_remediation")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    base = args.pg_url.rstrip("/")
    os.environ["DATABASE_URL"] = f"{base}/{args.db}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warenhaus.settings")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    )
    sys.path.insert(0, str(ROOT / "src"))
    print(f"bench: database {args.db} (fresh)", flush=True)
    recreate_database(base, args.db)
    subprocess.run(
        [*warenhaus_cmd(), "migrate", "-v", "0"], env=dict(os.environ), check=True, cwd=str(ROOT)
    )
    r = run(args)
    print(json.dumps(r, indent=2))
    print(
        f"targets: preview < {TARGETS['preview_s']:.0f} s: {'met' if r['preview_s'] < TARGETS['preview_s'] else 'MISSED'}; "
        f">= {TARGETS['orders_per_s']:.0f} orders/s: {'met' if r['orders_per_s'] >= TARGETS['orders_per_s'] else 'MISSED'}; "
        f"checks: {'all passed' if all(r['checks'].values()) else r['checks']}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0 if all(r["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
