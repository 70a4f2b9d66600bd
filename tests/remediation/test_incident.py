"""The incident of MISSION 1 replayed at small scale on PostgreSQL, end to end.

1. 40 codes that nobody approved, and genuine approved single-use codes. 2,000 shoppers and
   phone agents, in 40 real threads with their own connections, try them: through the cart (as a
   shopper types the code) and behind the cart's back (a code already in the cart when checkout
   runs). None of the 40 redeems; every genuine code does, on the web and by phone.
2. An approved public code leaks and is used once a second: the leak monitor pauses it within
   60 seconds (simulated clock, real checkouts).
3. Remediation over the API: the preview counts exactly the leaked code's orders; executing it
   cancels exactly those not yet shipped, tells each of their customers once, with a goodwill
   code that works once; every other order is left alone; a second execute changes nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.concurrency.support import run_together
from tests.smtp import smtp_server  # noqa: F401  (a fixture)
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

THREADS = 40
PER_THREAD = 50
SHOPPERS = THREADS * PER_THREAD  # 2,000
ADDRESS = {
    "name": "Erika Mustermann",
    "street": "Heidestraße 17",
    "postal_code": "51147",
    "city": "Köln",
    "country": "DE",
}


def test_the_incident_replayed(transactional_db, settings, monkeypatch, smtp_server, api_as):
    from warenhaus.accounts.services import create_staff
    from warenhaus.catalog.services import create_category, create_product
    from warenhaus.checkout import services as checkout
    from warenhaus.core.clock import now
    from warenhaus.core.errors import DomainError
    from warenhaus.notifications.models import OutboxMessage
    from warenhaus.notifications.services import deliver
    from warenhaus.orders import services as orders
    from warenhaus.orders.models import Order, OrderEvent
    from warenhaus.promotions import services as promotions
    from warenhaus.promotions.models import Campaign, CampaignStatus, CartVoucher, Code, Redemption
    from warenhaus.remediation import services as remediation

    settings.VOUCHER_ATTEMPT_LIMIT = 100_000
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
    agent = create_staff(
        email="telefon@warenhaus.example", password="Geheim-Passwort-1", roles=["support"], name="C"
    )
    analyst = create_staff(
        email="risiko@warenhaus.example", password="Geheim-Passwort-1", roles=["risk"], name="D"
    )
    cat = create_category(slug="vorfall", name="Vorfall", name_en="Incident")
    product = create_product(
        actor=None,
        title="Notebook 15",
        category=cat.slug,
        variants=[{"sku": "NB-15", "price": "449.97", "on_hand": 10_000}],
    )
    sku = product.variants.get().sku
    until = now() + timedelta(days=2)

    # --- 1. 40 unapproved codes and genuine ones, 2,000 shoppers ---------------------------------
    unapproved = []
    for i in range(40):
        c = promotions.create_campaign(
            actor=author,
            name=f"Nicht freigegeben {i}",
            discount_kind="fixed",
            discount_value=str(88 + 8 * i),
            min_basket="401.00",
            code_mode="public",
            public_code=f"NACHT{i:02d}X",
            valid_until=until,
        )
        unapproved.append((f"NACHT{i:02d}X", Code.objects.get(campaign=c)))
    genuine = promotions.create_campaign(
        actor=author,
        name="Echt",
        discount_kind="fixed",
        discount_value="10.00",
        min_basket="30.00",
        code_mode="unique",
        budget="100000.00",
        total_limit=10_000,
        valid_until=until,
    )
    promotions.approve_campaign(campaign_id=genuine.pk, actor=approver)
    _b, genuine_codes = promotions.generate_codes(
        campaign_id=genuine.pk, actor=author, count=SHOPPERS // 2
    )

    def shopper(t):
        out = []
        for j in range(PER_THREAD):
            i = t * PER_THREAD + j
            phone = (i // 4) % 2 == 1
            actor = agent if phone else None
            channel = "phone" if phone else "web"
            cart, _ = (
                checkout.create_cart()
            )  # the agent keys the customer's basket into a fresh cart
            checkout.add_line(cart_id=cart.id, sku=sku, quantity=1)
            kind = i % 4
            try:
                if kind in (0, 1):
                    cart_vouchers.apply_voucher(
                        cart_id=cart.id, code=genuine_codes[(i // 4) * 2 + kind], channel=channel
                    )
                elif kind == 2:  # typed in: refused in the cart already
                    cart_vouchers.apply_voucher(
                        cart_id=cart.id, code=unapproved[i % 40][0], channel=channel
                    )
                else:  # slipped into the cart behind its back: checkout refuses it
                    CartVoucher.objects.create(cart_id=cart.id, code=unapproved[i % 40][1])
                order = checkout.place_order(
                    cart_id=cart.id,
                    user=actor,
                    email=f"kunde{i}@example.de",
                    shipping_address=ADDRESS,
                    payment_method="invoice",
                    channel=channel,
                )
            except DomainError as err:
                out.append((i, "refused", err.code))
            else:
                out.append((i, "ok", order.discount, order.channel))
        return out

    results = run_together(THREADS, shopper, timeout=600)
    flat = []
    for r in results:
        assert isinstance(r, list), r
        flat.extend(r)
    assert len(flat) == SHOPPERS
    assert {(r[1], r[2]) for r in flat if r[0] % 4 >= 2} == {("refused", "voucher_not_approved")}
    assert {(r[1], r[2]) for r in flat if r[0] % 4 < 2} == {("ok", Decimal("10.00"))}
    assert {r[3] for r in flat if r[1] == "ok"} == {"web", "phone"}
    assert not Redemption.objects.exclude(campaign=genuine).exists()
    assert Redemption.objects.filter(campaign=genuine).count() == SHOPPERS // 2
    genuine_orders = {
        o.number: o.status for o in Order.objects.filter(redemptions__campaign=genuine)
    }
    assert len(genuine_orders) == SHOPPERS // 2

    # --- 2. an approved public code leaks, used once a second -----------------------------------
    leak = promotions.create_campaign(
        actor=author,
        name="Winter",
        discount_kind="fixed",
        discount_value="25.00",
        min_basket="100.00",
        code_mode="public",
        public_code="WINTER25",
        budget="50000.00",
        total_limit=2000,
        expected_redemptions_per_hour=60,
        valid_until=until,
    )
    promotions.approve_campaign(campaign_id=leak.pk, actor=approver)
    plain = [
        checkout.place_order(
            cart_id=_cart(checkout, sku),
            email=f"normal{i}@example.de",
            shipping_address=ADDRESS,
            payment_method="invoice",
        )
        for i in range(5)
    ]
    start = now()
    clock = {"at": start}
    monkeypatch.setattr(promotions.redemption, "now", lambda: clock["at"])
    leaked_orders, paused_at = [], None
    for second in range(90):
        clock["at"] = start + timedelta(seconds=second)
        cart_id = _cart(checkout, sku)
        try:
            cart_vouchers.apply_voucher(
                cart_id=cart_id, code="WINTER25", client_ip=f"198.51.100.{second + 1}"
            )
            # some people use it twice: they must hear from us once
            email = f"schnaeppchen{second % 25}@example.de"
            leaked_orders.append(
                checkout.place_order(
                    cart_id=cart_id,
                    email=email,
                    shipping_address=ADDRESS,
                    payment_method="invoice",
                    client_ip=f"198.51.100.{second + 1}",
                )
            )
        except DomainError as err:
            assert err.code == "voucher_paused"
        if second % 15 == 7:
            promotions.run_monitors(now=clock["at"])
            if (
                paused_at is None
                and Campaign.objects.get(pk=leak.pk).status == CampaignStatus.PAUSED
            ):
                paused_at = second
    monkeypatch.undo()
    assert paused_at is not None and paused_at < 60, paused_at
    assert len(leaked_orders) == paused_at + 1
    shipped = leaked_orders[:3]
    for o in shipped:
        orders.ship(number=o.number, actor=agent)
    unshipped = leaked_orders[3:]
    customers = {o.email for o in unshipped}

    # --- 3. remediation over the API ------------------------------------------------------------
    client = api_as(
        analyst
    )  # risk prepares the clean-up, support executes it (four eyes on the goodwill)
    body = {
        "selector": {
            "voucher_codes": ["WINTER25"],
            "placed_from": (start - timedelta(minutes=1)).isoformat(),
            "placed_to": (start + timedelta(hours=1)).isoformat(),
        },
        "actions": [
            "cancel",
            "notify",
            {"goodwill_voucher": {"amount": "10.00", "currency": "EUR"}},
        ],
        "dry_run": True,
        "reason": "Code WINTER25 geleakt",
        "customer_note": "Der Gutscheincode war nicht für die Öffentlichkeit bestimmt.",
    }
    r = client.post("/remediations", body, headers={"Idempotency-Key": "vorfall-1"})
    assert r.status_code == 201, r.content
    preview = r.json()["preview"]
    assert preview["orders"] == len(leaked_orders) and preview["out_of_reach"] == 3
    assert preview["affected"] == {
        **preview["affected"],
        "orders": len(unshipped),
        "customers": len(customers),
    }
    job_id = r.json()["id"]
    client = api_as(agent)
    r = client.post(f"/remediations/{job_id}/execute")
    assert r.status_code == 202
    assert remediation.run(job_id) == "done"
    job = client.get(f"/remediations/{job_id}").json()
    assert (
        job["counts"]["cancelled"] == len(unshipped)
        and job["counts"]["out_of_reach"] == 3
        and job["counts"]["notified"] == len(customers)
    )

    status = dict(Order.objects.values_list("number", "status"))
    assert all(status[o.number] == "cancelled" for o in unshipped)
    assert all(status[o.number] == "shipped" for o in shipped)
    assert all(status[n] == s for n, s in genuine_orders.items())  # genuine codes: untouched
    assert all(status[o.number] != "cancelled" for o in plain)
    assert Order.objects.filter(status="cancelled").count() == len(unshipped)

    notices = list(OutboxMessage.objects.filter(kind="remediation_notice"))
    assert Counter(m.to_email for m in notices) == Counter({e: 1 for e in customers})
    assert not OutboxMessage.objects.filter(kind="order_cancelled").exists()
    for m in notices[:3]:
        assert deliver(m.pk) == "sent"
    mails = smtp_server.wait_for(3)
    code = re.search(r"\b([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})\b", mails[0].text).group(1)
    assert (
        "WINTER25 geleakt" not in mails[0].text and "nicht für die Öffentlichkeit" in mails[0].text
    )

    # the goodwill code works once
    cart_id = _cart(checkout, sku)
    cart_vouchers.apply_voucher(cart_id=cart_id, code=code)
    thanks = checkout.place_order(
        cart_id=cart_id,
        email=mails[0].rcpt_tos[0],
        shipping_address=ADDRESS,
        payment_method="invoice",
    )
    assert thanks.discount == Decimal("10.00")
    with pytest.raises(DomainError) as err:
        cart_vouchers.apply_voucher(cart_id=_cart(checkout, sku), code=code)
    assert err.value.code in ("voucher_exhausted", "limit_per_customer")

    # a second execute changes nothing
    before = (
        OrderEvent.objects.count(),
        OutboxMessage.objects.count(),
        Code.objects.count(),
        dict(Order.objects.values_list("number", "status")),
    )
    r = client.post(f"/remediations/{job_id}/execute")
    assert r.status_code == 200 and r.json()["state"] == "done"
    assert remediation.run(job_id) == "done"
    assert (
        OrderEvent.objects.count(),
        OutboxMessage.objects.count(),
        Code.objects.count(),
        dict(Order.objects.values_list("number", "status")),
    ) == before


def _cart(checkout, sku) -> str:
    cart, _ = checkout.create_cart()
    checkout.add_line(cart_id=cart.id, sku=sku, quantity=1)
    return cart.id
