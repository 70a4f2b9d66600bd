"""Leak monitors: a leaked public code used once a second pauses its campaign within a minute;
each monitor trips just past its threshold and not at it; one alert per incident; the pause is
audited and the promotions staff get one mail each."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest

from warenhaus.checkout import vouchers as cart_vouchers
from warenhaus.core.clock import now
from warenhaus.core.errors import DomainError
from warenhaus.core.models import AuditEntry
from warenhaus.notifications.models import OutboxMessage
from warenhaus.orders.models import Order
from warenhaus.promotions import monitors, services
from warenhaus.promotions.models import Alert, Campaign, CampaignStatus, Code, Redemption

_numbers = itertools.count(1)


@pytest.fixture
def redemption_at(db):
    """``redemption_at(campaign, at, ip=..., guest=..., new_account=..., amount=..., basket=...)``:
    one Redemption row (with a minimal order) at a chosen time."""

    def make(
        campaign,
        at,
        *,
        ip="192.0.2.1",
        guest=False,
        new_account=False,
        amount="10.00",
        basket="100.00",
        customer=None,
        code=None,
    ):
        n = next(_numbers)
        order = Order.objects.create(
            number=f"MON{n:08d}",
            email=f"k{n}@example.de",
            shipping_address={},
            shipping_method="standard",
            payment_method="invoice",
            subtotal=Decimal(basket),
            shipping=Decimal("0"),
            vat=Decimal("0"),
            total=Decimal(basket),
            placed_at=at,
        )
        return Redemption.objects.create(
            campaign=campaign,
            code=code or Code.objects.filter(campaign=campaign).first(),
            order=order,
            redeemer_key=customer or f"email:k{n}@example.de",
            amount=Decimal(amount),
            basket_value=Decimal(basket),
            channel="web",
            client_ip=ip,
            new_account=new_account,
            guest=guest,
            created_at=at,
        )

    return make


def _campaign(make_campaign, code="LEAK10", **fields):
    return make_campaign(public_code=code, **fields)


def _status(c):
    return Campaign.objects.get(pk=c.pk).status


# --- the promise: a leaked code at one a second is paused within 60 s ---------------------------


def test_a_leaked_code_used_once_a_second_is_paused_within_a_minute_through_real_checkouts(
    make_campaign, make_product, address, monkeypatch, settings, author, approver
):
    from warenhaus.checkout import services as checkout

    settings.VOUCHER_ATTEMPT_LIMIT = 10_000
    c = _campaign(
        make_campaign, expected_redemptions_per_hour=60, total_limit=1000, budget="100000.00"
    )
    product = make_product(price="49.97", on_hand=1000)
    sku = product.variants.get().sku
    start = now()
    clock = {"at": start}
    monkeypatch.setattr(services.redemption, "now", lambda: clock["at"])
    paused_at = None
    redeemed = refused = 0
    for second in range(90):
        clock["at"] = start + timedelta(seconds=second)
        cart, _ = checkout.create_cart()
        checkout.add_line(cart_id=cart.id, sku=sku, quantity=1)
        try:
            cart_vouchers.apply_voucher(
                cart_id=cart.id, code="LEAK10", client_ip=f"198.51.100.{second % 250 + 1}"
            )
            checkout.place_order(
                cart_id=cart.id,
                email=f"leak{second}@example.de",
                shipping_address=address,
                payment_method="invoice",
                client_ip=f"198.51.100.{second % 250 + 1}",
            )
            redeemed += 1
        except DomainError:
            refused += 1
        if second % 15 == 7:  # the worker's sweep, every 15 s, at some phase
            services.run_monitors(now=clock["at"])
            if paused_at is None and _status(c) == CampaignStatus.PAUSED:
                paused_at = second
    assert paused_at is not None and paused_at < 60, paused_at
    assert Redemption.objects.filter(campaign=c).count() == redeemed == paused_at + 1
    assert refused == 90 - redeemed  # paused codes stop redeeming with the next request
    # every checkout was a guest's, so the new-account share trips in the same sweep; the rate
    # monitor (checked first) is the one that paused the campaign, and there is one mail
    alerts = {a.monitor: a for a in Alert.objects.filter(campaign=c)}
    assert (
        set(alerts) == {"rate", "new_share"}
        and alerts["rate"].paused
        and not alerts["new_share"].paused
    )
    assert alerts["rate"].measured > alerts["rate"].threshold == 10
    entry = AuditEntry.objects.get(action="campaign.pause", object_id=str(c.pk))
    assert entry.actor is None and entry.source == "system" and "rate" in entry.reason
    mails = OutboxMessage.objects.filter(kind="voucher_alert")
    assert sorted(m.to_email for m in mails) == sorted([author.email, approver.email])


def test_the_sweep_keeps_checkout_free_of_monitoring(make_campaign, redemption_at, monkeypatch):
    """apply_voucher and redeem never run the monitors: only the sweep does."""
    calls = []
    monkeypatch.setattr(monitors, "readings", lambda *a, **k: calls.append(a) or [])
    c = _campaign(make_campaign)
    for i in range(30):
        redemption_at(c, now() - timedelta(seconds=i))
    assert calls == [] and _status(c) == CampaignStatus.APPROVED
    services.run_monitors()
    assert len(calls) == 1


# --- each monitor at its edges ------------------------------------------------------------------


def test_rate_trips_above_max_of_expected_times_factor_and_floor(make_campaign, redemption_at):
    at = now()
    c = _campaign(
        make_campaign, expected_redemptions_per_hour=600
    )  # 10 a minute, x3 = 30 > floor 10
    assert monitors.RateMonitor().threshold(c) == 30
    for i in range(30):
        redemption_at(c, at - timedelta(seconds=i))
    redemption_at(c, at - timedelta(seconds=60))  # exactly one window old: outside
    assert services.run_monitors(now=at) == [] and _status(c) == CampaignStatus.APPROVED
    redemption_at(c, at - timedelta(seconds=59))
    (alert,) = services.run_monitors(now=at)
    assert (alert.monitor, alert.measured, alert.threshold, alert.window_seconds) == (
        "rate",
        31.0,
        30.0,
        60,
    )
    assert _status(c) == CampaignStatus.PAUSED


def test_rate_floor_applies_without_expected_rate_and_is_configurable(make_campaign, redemption_at):
    at = now()
    c = _campaign(make_campaign, monitor_settings={"rate": {"floor": 20}})
    for i in range(20):
        redemption_at(c, at - timedelta(seconds=i))
    assert services.run_monitors(now=at) == []
    redemption_at(c, at - timedelta(seconds=25))
    assert [a.monitor for a in services.run_monitors(now=at)] == ["rate"]


def _spread(make_campaign, code, **fields):
    # rate monitor out of the way, so each test sees one monitor
    return _campaign(
        make_campaign,
        code=code,
        monitor_settings={"rate": {"enabled": False}, **fields.pop("monitor_settings", {})},
        **fields,
    )


def test_new_account_share_trips_above_its_share(make_campaign, redemption_at):
    at = now()
    c = _spread(make_campaign, "NEU10")
    for i in range(16):
        redemption_at(
            c,
            at - timedelta(seconds=10 * i),
            ip=f"192.0.2.{i}",
            guest=i % 2 == 0,
            new_account=i % 2 == 1,
        )
    for i in range(4):
        redemption_at(c, at - timedelta(seconds=5 + 10 * i), ip=f"192.0.2.{100 + i}")
    assert services.run_monitors(now=at) == []  # 16 of 20 = 80 %: at the threshold, not above
    redemption_at(c, at - timedelta(seconds=3), guest=True)
    (alert,) = services.run_monitors(now=at)
    assert (
        alert.monitor == "new_share"
        and alert.measured == pytest.approx(17 / 21, abs=1e-4)
        and alert.threshold == 0.8
    )


def test_new_account_share_needs_enough_redeemers(make_campaign, redemption_at):
    at = now()
    c = _spread(make_campaign, "NEU11")
    for i in range(19):
        redemption_at(c, at - timedelta(seconds=i), ip=f"192.0.2.{i}", guest=True)
    assert services.run_monitors(now=at) == []
    redemption_at(c, at - timedelta(seconds=30), guest=True)
    assert [a.monitor for a in services.run_monitors(now=at)] == ["new_share"]


def test_one_code_from_many_addresses_trips(make_campaign, redemption_at):
    at = now()
    c = _spread(make_campaign, "ADR10", monitor_settings={"addresses": {"max_addresses": 5}})
    for i in range(5):
        redemption_at(c, at - timedelta(seconds=i), ip=f"203.0.113.{i}")
        redemption_at(
            c, at - timedelta(seconds=i), ip=f"203.0.113.{i}"
        )  # the same address again counts once
    assert services.run_monitors(now=at) == []
    redemption_at(c, at - timedelta(seconds=700), ip="203.0.113.99")  # outside the 10-minute window
    assert services.run_monitors(now=at) == []
    redemption_at(c, at - timedelta(seconds=9), ip="203.0.113.6")
    (alert,) = services.run_monitors(now=at)
    assert (alert.monitor, alert.measured, alert.threshold) == ("addresses", 6.0, 5.0)


def test_discount_share_of_baskets_trips_above_its_share(make_campaign, redemption_at):
    at = now()
    c = _spread(make_campaign, "ANT10")
    for i in range(10):
        redemption_at(
            c, at - timedelta(seconds=i), ip=f"192.0.2.{i}", amount="40.00", basket="100.00"
        )
    assert services.run_monitors(now=at) == []  # exactly 40 %: not above
    redemption_at(c, at - timedelta(seconds=20), amount="400.00", basket="401.00")
    (alert,) = services.run_monitors(now=at)
    assert alert.monitor == "discount_share" and alert.measured > 0.4


def test_discount_share_needs_enough_redemptions(make_campaign, redemption_at):
    at = now()
    c = _spread(make_campaign, "ANT11")
    for i in range(9):
        redemption_at(
            c, at - timedelta(seconds=i), ip=f"192.0.2.{i}", amount="400.00", basket="401.00"
        )
    assert services.run_monitors(now=at) == []


# --- incidents, auto_pause, mail, audit, API ----------------------------------------------------


def test_one_alert_per_incident_and_a_new_one_for_the_next(make_campaign, redemption_at):
    at = now()
    c = _campaign(make_campaign, auto_pause=False)
    for i in range(40):
        redemption_at(c, at - timedelta(seconds=i))
    assert len(services.run_monitors(now=at)) == 1
    assert (
        services.run_monitors(now=at + timedelta(seconds=15)) == []
    )  # still tripping: the same incident
    assert Alert.objects.filter(campaign=c).count() == 1
    assert Alert.objects.get(campaign=c).last_seen_at == at + timedelta(seconds=15)
    assert services.run_monitors(now=at + timedelta(seconds=120)) == []  # quiet: the incident ends
    assert Alert.objects.get(campaign=c).resolved_at == at + timedelta(seconds=120)
    later = at + timedelta(seconds=300)
    for i in range(11):
        redemption_at(c, later - timedelta(seconds=i))
    assert len(services.run_monitors(now=later)) == 1
    assert Alert.objects.filter(campaign=c).count() == 2
    assert (
        OutboxMessage.objects.filter(kind="voucher_alert").count() == 2 * 2
    )  # two staff, two incidents


def test_auto_pause_off_alerts_but_does_not_pause(make_campaign, redemption_at):
    at = now()
    c = _campaign(make_campaign, auto_pause=False)
    for i in range(11):
        redemption_at(c, at - timedelta(seconds=i))
    (alert,) = services.run_monitors(now=at)
    assert not alert.paused and _status(c) == CampaignStatus.APPROVED
    assert not AuditEntry.objects.filter(action="campaign.pause").exists()
    assert (
        AuditEntry.objects.filter(
            action="campaign.alert", object_id=str(c.pk), source="system"
        ).count()
        == 1
    )
    msg = OutboxMessage.objects.filter(kind="voucher_alert").first()
    assert msg.template == "voucher_alert"


def test_mail_once_per_active_promotions_user(
    make_campaign, redemption_at, make_user, author, approver
):
    make_user(roles=["support"])  # not promotions staff
    gone = make_user(roles=["promotions"])
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    both = make_user(roles=["promotions", "promotions_approver"])
    at = now()
    c = _campaign(make_campaign)
    for i in range(11):
        redemption_at(c, at - timedelta(seconds=i))
    services.run_monitors(now=at)
    services.run_monitors(now=at + timedelta(seconds=15))
    services.run_monitors(now=at + timedelta(seconds=30))
    assert sorted(
        OutboxMessage.objects.filter(kind="voucher_alert").values_list("to_email", flat=True)
    ) == sorted([author.email, approver.email, both.email])


def test_the_alert_mail_renders(make_campaign, redemption_at):
    from warenhaus.notifications.services import render_mail

    at = now()
    c = _campaign(make_campaign, name="Sommer")
    for i in range(11):
        redemption_at(c, at - timedelta(seconds=i))
    services.run_monitors(now=at)
    msg = OutboxMessage.objects.filter(kind="voucher_alert").first()
    from warenhaus.notifications import context as mail_context

    subject, body, _html = render_mail(
        template="voucher_alert", context=mail_context.resolve(msg.context), language="en"
    )
    assert "Sommer" in subject and "paused" in subject
    assert "rate" in body and "11 redemptions" in body


def test_paused_and_draft_campaigns_are_not_swept(make_campaign, redemption_at, approver):
    at = now()
    c = _campaign(make_campaign)
    services.pause_campaign(campaign_id=c.pk, actor=approver, reason="manual")
    for i in range(20):
        redemption_at(c, at - timedelta(seconds=i))
    assert services.run_monitors(now=at) == []


def test_alerts_api_lists_them_and_acknowledging_is_recorded(
    make_campaign, redemption_at, api_as, make_user, author
):
    at = now()
    c = _campaign(make_campaign)
    for i in range(11):
        redemption_at(c, at - timedelta(seconds=i))
    services.run_monitors(now=at)
    client = api_as(author)
    body = client.get(f"/campaigns/{c.pk}/alerts").json()
    assert body["next_cursor"] is None and len(body["items"]) == 1
    item = body["items"][0]
    assert (
        item["monitor"] == "rate"
        and item["paused_campaign"] is True
        and item["acknowledged_at"] is None
    )
    services.acknowledge_alert(alert_id=item["id"], actor=author)
    assert (
        client.get(f"/campaigns/{c.pk}/alerts").json()["items"][0]["acknowledged_by"]
        == author.email
    )
    assert AuditEntry.objects.filter(action="alert.acknowledge", actor=author).count() == 1
    assert api_as(make_user()).get(f"/campaigns/{c.pk}/alerts").status_code in {401, 403}


def test_monitor_settings_are_validated(make_campaign):
    with pytest.raises(DomainError):
        _campaign(make_campaign, code="XCODE1", monitor_settings={"nonsense": {}})
    with pytest.raises(DomainError):
        _campaign(make_campaign, code="XCODE2", monitor_settings={"rate": {"factor": "many"}})
    c = _campaign(make_campaign, code="XCODE3", monitor_settings={"rate": {"factor": 5}})
    assert monitors.RateMonitor().settings_for(c) == {
        "window_seconds": 60,
        "factor": 5,
        "floor": 10,
    }


def test_the_task_runs_a_sweep(make_campaign, redemption_at):
    from warenhaus.promotions.tasks import run_monitors_task

    c = _campaign(make_campaign)
    for i in range(11):
        redemption_at(c, now() - timedelta(seconds=i))
    assert run_monitors_task.call() == 1
    assert _status(c) == CampaignStatus.PAUSED
