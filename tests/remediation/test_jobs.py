"""Remediation jobs through their services: selecting, previewing, executing, resuming, and
executing twice."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from tests.smtp import smtp_server  # noqa: F401  (a fixture)
from warenhaus.core.errors import DomainError
from warenhaus.core.models import AuditEntry
from warenhaus.notifications.models import OutboxMessage
from warenhaus.orders.models import Order, OrderEvent
from warenhaus.promotions.models import Campaign, Code, Redemption
from warenhaus.remediation import services
from warenhaus.remediation.models import Item, Job

from .conftest import run_worker

pytestmark = pytest.mark.django_db


@pytest.fixture
def leak(make_campaign, unique_code, buy, make_user, support):
    """A leaked public code (three orders by two customers, one of them shipped) and a genuine
    unique code (one order) in the same night."""
    from warenhaus.orders import services as orders

    make_campaign(
        public_code="LEAK400",
        discount_value="40.00",
        min_basket="100.00",
        budget="100000.00",
        total_limit=None,
        per_customer_limit=None,
    )
    _c, genuine = unique_code(discount_value="10.00", min_basket="30.00")
    max_ = make_user(email="max@example.de", name="Max")
    a = buy(code="LEAK400", email="erika@example.de")
    b = buy(code="LEAK400", email="erika@example.de")
    c = buy(code="LEAK400", email="max@example.de", user=max_, name="Max Muster")
    shipped = buy(code="LEAK400", email="jo@example.de", name="Jo")
    orders.ship(number=shipped.number, actor=support)
    kept = buy(code=genuine, email="gina@example.de", name="Gina")
    return {"leaked": [a, b, c], "shipped": shipped, "genuine": kept, "max": max_}


def _status(order):
    return Order.objects.get(pk=order.pk).status


def test_the_preview_counts_without_touching_anything(leak, support):
    job = services.create_job(
        actor=support,
        selector={"voucher_codes": ["leak-400"]},
        actions=["cancel", "notify", {"goodwill_voucher": {"amount": "10.00"}}],
        reason="Leck",
    )
    p = job.preview
    assert p["orders"] == 4 and p["customers"] == 3
    assert p["out_of_reach"] == 1 and p["unshipped"] == 3
    assert p["affected"]["orders"] == 3 and p["affected"]["customers"] == 2
    assert p["amounts"]["discount"] == {"amount": "160.00", "currency": "EUR"}
    assert p["goodwill"]["at_most"] == {"amount": "20.00", "currency": "EUR"}
    assert {s["number"] for s in p["sample"]} == {
        o.number for o in [*leak["leaked"], leak["shipped"]]
    }
    assert job.state == "preview" and job.selector["codes"][0]["hint"] == "…400"
    assert "LEAK400" not in str(job.selector)  # codes are not stored in clear
    assert all(_status(o) in ("awaiting_payment", "placed") for o in leak["leaked"])
    assert (
        not Item.objects.exists()
        and not Campaign.objects.filter(name__startswith="Goodwill").exists()
    )


def test_execute_cancels_exactly_the_unshipped_orders_of_the_code_and_tells_each_customer_once(
    leak, support, risk, smtp_server
):
    job = services.create_job(
        actor=risk,
        selector={"voucher_codes": ["LEAK400"]},
        actions=["cancel", "notify", {"goodwill_voucher": {"amount": "10.00"}}],
        reason="Leck: Code LEAK400",
        customer_note="Der Code war nicht freigegeben.",
    )
    job, started = services.execute(job_id=job.pk, actor=support)
    assert started and job.state == "queued"
    run_worker()
    job.refresh_from_db()
    assert job.state == "done" and job.percent == 100
    assert (
        job.total,
        job.processed,
        job.cancelled,
        job.out_of_reach,
        job.customers_total,
        job.notified,
        job.vouchers_issued,
    ) == (4, 4, 3, 1, 2, 2, 2)
    assert all(_status(o) == "cancelled" for o in leak["leaked"])
    assert _status(leak["shipped"]) == "shipped" and _status(leak["genuine"]) != "cancelled"
    # the redemptions are given back, the genuine one is untouched
    assert (
        Redemption.objects.filter(order__in=leak["leaked"], released_at__isnull=False).count() == 3
    )
    assert Redemption.objects.get(order=leak["genuine"]).released_at is None
    # one notice per customer, no separate cancellation mails
    notices = OutboxMessage.objects.filter(kind="remediation_notice")
    assert sorted(m.to_email for m in notices) == ["erika@example.de", "max@example.de"]
    assert not OutboxMessage.objects.filter(kind="order_cancelled").exists()
    smtp_server.wait_for(len(OutboxMessage.objects.all()))
    notice = [
        m
        for m in smtp_server.messages
        if m.rcpt_tos == ["erika@example.de"]
        and all(o.number in m.text for o in leak["leaked"][:2])
    ]
    assert len(notice) == 1
    text = notice[0].text
    assert (
        leak["leaked"][0].number in text
        and "Der Code war nicht freigegeben." in text
        and "Leck" not in text
    )
    code = re.search(r"\b([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})\b", text).group(1)
    # the goodwill code works once, and the database holds only its digest
    goodwill = Campaign.objects.get(pk=job.goodwill_campaign_id)
    assert (
        goodwill.status == "approved"
        and goodwill.approved_by == support
        and goodwill.total_limit == 2
    )
    from warenhaus.promotions import codes as codelib
    from warenhaus.promotions import services as promotions

    assert Code.objects.filter(
        campaign=goodwill, digest=codelib.digest(codelib.normalise(code))
    ).exists()
    assert promotions.dangers(goodwill) == []
    # history and audit trail
    assert AuditEntry.objects.filter(action="order.cancel", source="remediation").count() == 3
    assert (
        AuditEntry.objects.filter(
            action__in=["remediation.create", "remediation.execute", "remediation.finish"],
            object_id=str(job.pk),
        ).count()
        == 3
    )
    assert (
        "remediation #"
        in OrderEvent.objects.filter(order=leak["leaked"][0], to_status="cancelled").get().reason
    )


def test_executing_twice_changes_nothing_more(leak, support, risk):
    job = services.create_job(
        actor=risk,
        selector={"voucher_codes": ["LEAK400"]},
        actions=["cancel", "notify", {"goodwill_voucher": {"amount": "5.00"}}],
    )
    services.execute(job_id=job.pk, actor=support)
    run_worker()
    before = (
        OrderEvent.objects.count(),
        OutboxMessage.objects.count(),
        Code.objects.count(),
        AuditEntry.objects.filter(action="order.cancel").count(),
    )
    job2, started = services.execute(job_id=job.pk, actor=support)
    assert not started and job2.state == "done"
    run_worker()
    assert services.run(job.pk) == "done"
    assert (
        OrderEvent.objects.count(),
        OutboxMessage.objects.count(),
        Code.objects.count(),
        AuditEntry.objects.filter(action="order.cancel").count(),
    ) == before
    # a new job over the same selection finds nothing left to do and tells nobody
    again = services.create_job(
        actor=support,
        selector={"voucher_codes": ["LEAK400"]},
        actions=["cancel", "notify"],
        dry_run=False,
    )
    run_worker()
    again.refresh_from_db()
    assert (
        again.state == "done"
        and again.cancelled == 0
        and again.unchanged == 3
        and again.notified == 0
    )


def test_a_crash_mid_job_is_resumed_where_it_stopped(leak, support, settings, monkeypatch, clock):
    from warenhaus.orders import services as orders

    settings.REMEDIATION_CHUNK = 1
    real = orders.act_on_many
    calls = {"n": 0}

    def crash_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(orders, "act_on_many", crash_on_second)
    job = services.create_job(
        actor=support,
        selector={"voucher_codes": ["LEAK400"]},
        actions=["cancel", "notify"],
        dry_run=False,
    )
    with pytest.raises(RuntimeError):
        services.run(job.pk)
    job.refresh_from_db()
    assert job.state == "running" and job.processed == 1 and "worker killed" in job.last_error
    assert services.recover_stalled() == 1  # the lease ran out at once
    assert services.recover_stalled() == 0  # and it is not queued twice
    run_worker()
    job.refresh_from_db()
    assert job.state == "done" and job.processed == 4 and job.cancelled == 3
    for o in leak["leaked"]:
        assert OrderEvent.objects.filter(order=o, to_status="cancelled").count() == 1
    assert OutboxMessage.objects.filter(kind="remediation_notice").count() == 2


def test_a_live_lease_keeps_a_second_runner_out(leak, support):
    job = services.create_job(
        actor=support, selector={"voucher_codes": ["LEAK400"]}, actions=["hold"], dry_run=False
    )
    assert services._claim(job.pk, "first")
    assert services.run(job.pk, owner="second") == "running"
    assert Item.objects.filter(job=job, outcome="pending").count() == 4
    assert services.recover_stalled() == 0


def test_a_job_that_keeps_failing_stops_as_failed_and_can_be_resumed(
    leak, support, settings, monkeypatch
):
    from warenhaus.orders import services as orders

    settings.REMEDIATION_MAX_ATTEMPTS = 2
    real = orders.act_on_many
    monkeypatch.setattr(
        orders,
        "act_on_many",
        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("database says no")),
    )
    job = services.create_job(
        actor=support, selector={"voucher_codes": ["LEAK400"]}, actions=["cancel"], dry_run=False
    )
    with pytest.raises(RuntimeError):
        services.run(job.pk)
    assert services.run(job.pk) == "failed"
    job.refresh_from_db()
    assert job.state == "failed" and "database says no" in job.last_error and job.processed == 0
    monkeypatch.setattr(orders, "act_on_many", real)
    job, started = services.execute(job_id=job.pk, actor=support)
    assert started
    run_worker()
    job.refresh_from_db()
    assert job.state == "done" and job.cancelled == 3


def test_hold_keeps_the_orders_and_tells_the_customers(leak, support):
    job = services.create_job(
        actor=support,
        selector={"voucher_codes": ["LEAK400"]},
        actions=["hold", "notify"],
        dry_run=False,
    )
    run_worker()
    job.refresh_from_db()
    assert job.held == 3 and job.out_of_reach == 1 and job.notified == 2
    assert all(_status(o) == "on_hold" for o in leak["leaked"])
    assert Redemption.objects.filter(released_at__isnull=False).count() == 0


def test_cancel_without_notify_sends_the_usual_cancellation_mails(leak, support):
    services.create_job(
        actor=support, selector={"voucher_codes": ["LEAK400"]}, actions=["cancel"], dry_run=False
    )
    run_worker()
    assert OutboxMessage.objects.filter(kind="order_cancelled").count() == 3
    assert not OutboxMessage.objects.filter(kind="remediation_notice").exists()


def test_select_by_sku_below_a_price_floor(buy, make_product, support):
    laptop = make_product(price="29.99", on_hand=100, sku="LAP-15")
    typo = [buy(product=laptop, email=f"k{i}@example.de") for i in range(3)]
    other = buy(price="29.99", email="x@example.de")
    job = services.create_job(
        actor=support, selector={"sku": "LAP-15", "unit_price_below": "100.00"}, actions=["hold"]
    )
    assert job.preview["orders"] == 3
    assert other.number not in {s["number"] for s in job.preview["sample"]}
    assert {s["number"] for s in job.preview["sample"]} == {o.number for o in typo}


def test_select_by_order_numbers_and_window(buy, support):
    a, b = buy(email="a@example.de"), buy(email="b@example.de")
    job = services.create_job(
        actor=support, selector={"order_numbers": [a.number, "WH-NOTHERE"]}, actions=["cancel"]
    )
    assert job.preview["orders"] == 1 and job.preview["not_found"] == ["WH-NOTHERE"]
    later = services.create_job(
        actor=support,
        selector={
            "order_numbers": [a.number, b.number],
            "placed_from": "2999-01-01T00:00:00+00:00",
        },
        actions=["cancel"],
    )
    assert later.preview["orders"] == 0


@pytest.mark.parametrize(
    "selector, actions, code",
    [
        ({}, ["cancel"], "invalid_selector"),
        ({"voucher_codes": ["NOPE1234"]}, ["cancel"], "unknown_voucher_code"),
        ({"sku": "X"}, ["cancel"], "invalid_selector"),
        ({"sku": "X", "unit_price_below": "abc"}, ["cancel"], "invalid_money"),
        ({"order_numbers": ["WH-1"], "sku": "X"}, ["cancel"], "invalid_selector"),
        ({"order_numbers": ["WH-1"], "colour": "red"}, ["cancel"], "invalid_selector"),
        ({"order_numbers": ["WH-1"], "placed_from": "yesterday"}, ["cancel"], "invalid_selector"),
        ({"campaigns": [999999]}, ["cancel"], "campaign_not_found"),
        ({"order_numbers": ["WH-1"]}, [], "invalid_actions"),
        ({"order_numbers": ["WH-1"]}, ["explode"], "invalid_actions"),
        ({"order_numbers": ["WH-1"]}, ["cancel", "hold"], "conflicting_actions"),
        (
            {"order_numbers": ["WH-1"]},
            [{"goodwill_voucher": {"amount": "5000.00"}}],
            "goodwill_too_large",
        ),
        ({"order_numbers": ["WH-1"]}, [{"goodwill_voucher": {"amount": 10.5}}], "invalid_money"),
    ],
)
def test_bad_selectors_and_actions_are_refused_with_a_code(support, selector, actions, code):
    with pytest.raises(DomainError) as err:
        services.create_job(actor=support, selector=selector, actions=actions)
    assert err.value.code == code and 400 <= err.value.status < 500
    assert not Job.objects.exists()


def test_goodwill_implies_notify_and_the_actions_read_as_an_object_too(support, buy):
    o = buy()
    job = services.create_job(
        actor=support,
        selector={"order_numbers": [o.number]},
        actions={"cancel": True, "goodwill_voucher": {"amount": "10"}},
    )
    assert job.actions == {
        "cancel": True,
        "hold": False,
        "notify": True,
        "goodwill_amount": "10.00",
    }


def test_only_support_and_risk_may_execute(leak, make_user, author):
    job = services.create_job(
        actor=author, selector={"voucher_codes": ["LEAK400"]}, actions=["cancel"]
    )
    with pytest.raises(DomainError) as err:
        services.execute(job_id=job.pk, actor=author)
    assert err.value.status == 403
    with pytest.raises(DomainError):
        services.create_job(
            actor=author, selector={"voucher_codes": ["LEAK400"]}, actions=["cancel"], dry_run=False
        )


def test_the_goodwill_campaign_keeps_the_four_eyes_constraint(support):
    """Made by the system (no author), approved by whoever executed: the database accepts it,
    and still refuses an approval by the author."""
    from django.db import IntegrityError, transaction

    from warenhaus.remediation import goodwill

    job = Job.objects.create(reason="x", selector={}, actions={})
    c = goodwill.make_campaign(job=job, amount=Decimal("10.00"), customers=3, approver=support)
    assert c.created_by is None and c.budget == Decimal("30.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=c.pk).update(created_by=support)


def test_the_csv_export_lists_every_order_with_its_outcome(leak, support, risk):
    from warenhaus.remediation import selectors

    job = services.create_job(
        actor=risk,
        selector={"voucher_codes": ["LEAK400"]},
        actions=["cancel", "notify", {"goodwill_voucher": {"amount": "5.00"}}],
    )
    services.execute(job_id=job.pk, actor=support)
    run_worker()
    text = "".join(selectors.csv_rows(Job.objects.get(pk=job.pk)))
    lines = text.strip().splitlines()
    assert lines[0].startswith("order,placed_at,customer")
    assert len(lines) == 5
    assert (
        sum(",cancelled," in line for line in lines) == 3
        and sum(",out_of_reach," in line for line in lines) == 1
    )
    assert all("…" in line.split(",")[-1] for line in lines[1:] if ",cancelled," in line)


# --- from the review: four eyes, an outdated preview, what the outbox keeps, edges -------------


def test_goodwill_needs_a_second_person_and_an_up_to_date_preview(leak, support, risk, buy):
    job = services.create_job(
        actor=support,
        selector={"voucher_codes": ["LEAK400"]},
        actions=["cancel", {"goodwill_voucher": {"amount": "10.00"}}],
    )
    with pytest.raises(DomainError) as err:
        services.execute(job_id=job.pk, actor=support)
    assert err.value.code == "four_eyes_required" and err.value.status == 403
    with pytest.raises(DomainError) as err:
        services.create_job(
            actor=support,
            selector={"voucher_codes": ["LEAK400"]},
            actions=[{"goodwill_voucher": {"amount": "10.00"}}],
            dry_run=False,
        )
    assert err.value.code == "four_eyes_required"
    # the code goes on being used after the preview: the executor is shown the new figures first
    job = services.create_job(
        actor=risk,
        selector={"voucher_codes": ["LEAK400"]},
        actions=["cancel", {"goodwill_voucher": {"amount": "10.00"}}],
    )
    assert job.preview["affected"]["customers"] == 2
    buy(code="LEAK400", email="neu@example.de")
    with pytest.raises(DomainError) as err:
        services.execute(job_id=job.pk, actor=support)
    assert err.value.code == "preview_outdated" and err.value.status == 409
    job.refresh_from_db()
    assert (
        job.state == "preview" and job.preview["affected"]["customers"] == 3
    )  # updated for the next look
    assert (
        not Item.objects.filter(job=job).exists()
        and not Campaign.objects.filter(name__startswith="Goodwill").exists()
    )
    services.execute(job_id=job.pk, actor=support)
    run_worker()
    job.refresh_from_db()
    goodwill = Campaign.objects.get(pk=job.goodwill_campaign_id)
    assert (
        job.vouchers_issued == 3
        and goodwill.total_limit == 3
        and goodwill.budget == Decimal("30.00")
    )
    entry = AuditEntry.objects.get(action="campaign.approve", object_id=str(goodwill.pk))
    assert entry.actor == support and risk.email in entry.reason


def test_the_database_refuses_a_goodwill_job_executed_by_whoever_prepared_it(leak, support, risk):
    from django.db import IntegrityError, transaction

    from warenhaus.remediation import goodwill

    job = services.create_job(
        actor=risk,
        selector={"voucher_codes": ["LEAK400"]},
        actions=["cancel", {"goodwill_voucher": {"amount": "10.00"}}],
    )
    services.execute(job_id=job.pk, actor=support)
    job.refresh_from_db()
    c = job.goodwill_campaign
    # the preparer chose the amount: the campaign's author; the executor is its approver
    assert (c.created_by, c.approved_by) == (risk, support)
    assert [(s.user, s.role) for s in c.signoffs.order_by("pk")] == [
        (risk, "author"),
        (support, "approver"),
    ]
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.filter(pk=job.pk).update(executed_by=risk)
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=c.pk).update(approved_by=risk)
    # the goodwill campaign of the executor's own job is refused by its sign-offs, without the service's check
    own = Job.objects.create(reason="x", selector={}, actions={}, created_by=support)
    with pytest.raises(DomainError) as err, transaction.atomic():
        goodwill.make_campaign(job=own, amount=Decimal("10.00"), customers=1, approver=support)
    assert err.value.code == "four_eyes_required"
    # where no money is given away, one person may prepare and execute, as before
    Job.objects.filter(pk=own.pk).update(executed_by=support)


def test_the_outbox_keeps_only_a_hint_of_a_sent_goodwill_code(leak, support, risk, smtp_server):
    job = services.create_job(
        actor=risk,
        selector={"voucher_codes": ["LEAK400"]},
        actions=["cancel", {"goodwill_voucher": {"amount": "10.00"}}],
    )
    services.execute(job_id=job.pk, actor=support)
    run_worker()
    sent = [
        m
        for m in smtp_server.wait_for(len(OutboxMessage.objects.all()))
        if "Der Code" in m.text or "voucher" in m.text.lower() or "Gutschein" in m.text
    ]
    code = next(
        re.search(r"\b([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})\b", m.text).group(1)
        for m in sent
        if re.search(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b", m.text)
    )
    for msg in OutboxMessage.objects.filter(kind="remediation_notice"):
        assert msg.status == "sent" and code not in msg.body_text and code not in msg.body_html
        assert "••••-••••-•" in msg.body_text
    assert any(
        code[-3:] in m.body_text for m in OutboxMessage.objects.filter(kind="remediation_notice")
    )


def test_a_second_notify_only_job_tells_nobody_again(leak, support):
    services.create_job(
        actor=support, selector={"voucher_codes": ["LEAK400"]}, actions=["notify"], dry_run=False
    )
    run_worker()
    assert (
        OutboxMessage.objects.filter(kind="remediation_notice").count() == 3
    )  # erika, max, jo (shipped: noted)
    again = services.create_job(
        actor=support, selector={"voucher_codes": ["LEAK400"]}, actions=["notify"], dry_run=False
    )
    run_worker()
    again.refresh_from_db()
    assert again.noted == 0 and again.unchanged == 4 and again.notified == 0
    assert OutboxMessage.objects.filter(kind="remediation_notice").count() == 3


def test_the_sku_floor_and_the_window_are_exact(buy, make_product, support):
    from django.utils import timezone

    laptop = make_product(price="29.99", on_hand=100, sku="LAP-17")
    cheap = buy(product=laptop, email="a@example.de")
    from warenhaus.orders.models import OrderLine

    at_floor = buy(product=laptop, email="b@example.de")
    OrderLine.objects.filter(order=at_floor).update(unit_price=Decimal("100.00"))
    job = services.create_job(
        actor=support, selector={"sku": "LAP-17", "unit_price_below": "100.00"}, actions=["hold"]
    )
    assert job.preview["orders"] == 1 and job.preview["sample"][0]["number"] == cheap.number
    placed = Order.objects.get(pk=cheap.pk).placed_at
    edge = services.create_job(
        actor=support,
        selector={
            "order_numbers": [cheap.number],
            "placed_from": placed.isoformat(),
            "placed_to": placed.isoformat(),
        },
        actions=["hold"],
    )
    assert edge.preview["orders"] == 1  # both ends inclusive
    before = services.create_job(
        actor=support,
        selector={
            "order_numbers": [cheap.number],
            "placed_to": (placed - timezone.timedelta(microseconds=1)).isoformat(),
        },
        actions=["hold"],
    )
    assert before.preview["orders"] == 0


@pytest.mark.parametrize(
    "selector",
    [
        {"order_numbers": ["WH-1"], "placed_from": "2026-01-01T00:00:00+99:00"},
        {"order_numbers": ["WH-1"], "placed_to": "2026-13-01T00:00:00+00:00"},
        {"sku": "   ", "unit_price_below": "10.00"},
    ],
)
def test_impossible_times_and_blank_skus_are_refused(support, selector):
    with pytest.raises(DomainError) as err:
        services.create_job(actor=support, selector=selector, actions=["hold"])
    assert err.value.code == "invalid_selector"


def test_progress_only_grows(leak, support, risk, settings):
    settings.REMEDIATION_CHUNK = 2
    job = services.create_job(
        actor=risk,
        selector={"voucher_codes": ["LEAK400"]},
        actions=["cancel", {"goodwill_voucher": {"amount": "10.00"}}],
    )
    services.execute(job_id=job.pk, actor=support)
    seen = []
    services.run(job.pk, progress=lambda j: seen.append(j.percent))
    assert seen == sorted(seen) and seen[-1] == 100 and len(seen) >= 4


def test_failures_are_counted_in_a_row_and_a_live_runner_is_never_failed(
    leak, support, settings, monkeypatch
):
    from warenhaus.orders import services as orders

    settings.REMEDIATION_MAX_ATTEMPTS = 2
    settings.REMEDIATION_CHUNK = 1
    real = orders.act_on_many
    calls = {"n": 0}

    def every_other(*a, **k):
        calls["n"] += 1
        if calls["n"] % 2 == 0:
            raise RuntimeError("flaky")
        return real(*a, **k)

    monkeypatch.setattr(orders, "act_on_many", every_other)
    job = services.create_job(
        actor=support, selector={"voucher_codes": ["LEAK400"]}, actions=["cancel"], dry_run=False
    )
    for _ in range(10):
        try:
            if services.run(job.pk) == "done":
                break
        except RuntimeError:
            pass
    job.refresh_from_db()
    assert job.state == "done" and job.cancelled == 3  # progress between failures resets the count
    # a duplicate task while a runner holds a live lease does not fail the job
    other = services.create_job(
        actor=support, selector={"voucher_codes": ["LEAK400"]}, actions=["hold"], dry_run=False
    )
    Job.objects.filter(pk=other.pk).update(attempts=5)
    assert services._claim(other.pk, "alive")
    assert services.run(other.pk, owner="duplicate") == "running"
    assert Job.objects.get(pk=other.pk).state == "running"
