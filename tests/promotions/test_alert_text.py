"""An alert reads in the reader's language: the console and the alert mail render the monitor's
sentence from the stored measured value, threshold and window; ``message`` stays English."""

from __future__ import annotations

from datetime import timedelta

import pytest

from warenhaus.core.clock import now
from warenhaus.notifications.models import OutboxMessage
from warenhaus.promotions import monitors, selectors, services
from warenhaus.promotions.models import Alert

from .test_monitors import redemption_at  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "monitor,measured,threshold,window,de,en",
    [
        (
            "rate",
            61,
            10,
            60,
            "61 Einlösungen in den letzten 60 s; höchstens 10 erwartet.",
            "61 redemptions in the last 60 s; at most 10 expected.",
        ),
        (
            "new_share",
            0.925,
            0.8,
            600,
            "92,5 % der Einlösenden in den letzten 600 s sind Gäste oder neue Konten; höchstens 80 % erwartet.",
            "92.5% of the redeemers in the last 600 s are guests or new accounts; at most 80% expected.",
        ),
        (
            "addresses",
            45,
            30,
            600,
            "Ein Code wurde in den letzten 600 s von 45 verschiedenen Adressen eingelöst; höchstens 30 erwartet.",
            "One code was redeemed from 45 different addresses in the last 600 s; at most 30 expected.",
        ),
        (
            "discount_share",
            0.99,
            0.4,
            600,
            "Rabatte machten in den letzten 600 s im Schnitt 99 % des Warenkorbs aus; höchstens 40 % erwartet.",
            "Discounts took 99% of the basket on average in the last 600 s; at most 40% expected.",
        ),
    ],
)
def test_each_monitor_reads_in_german_and_english(
    make_campaign, monitor, measured, threshold, window, de, en
):
    at = now()
    a = Alert.objects.create(
        campaign=make_campaign(),
        monitor=monitor,
        measured=measured,
        threshold=threshold,
        peak=measured,
        window_seconds=window,
        message="stored",
        created_at=at,
        last_seen_at=at,
    )
    assert selectors.alert_text(a, "de") == de
    assert selectors.alert_text(a, "en") == en
    body = selectors.alert_json(a)
    assert body["message"] == "stored" and body["message_de"] == de


def test_an_unknown_monitor_falls_back_to_the_stored_sentence(make_campaign):
    at = now()
    a = Alert(
        campaign=make_campaign(),
        monitor="retired",
        measured=1,
        threshold=1,
        peak=1,
        window_seconds=1,
        message="As it was.",
        created_at=at,
        last_seen_at=at,
    )
    assert monitors.describe_alert(a, "de") == "As it was."


def test_the_alert_mail_reads_in_german(make_campaign, redemption_at, author):  # noqa: F811
    from warenhaus.notifications import context as mail_context
    from warenhaus.notifications.services import render_mail

    at = now()
    c = make_campaign(public_code="LEAK10")
    for i in range(11):
        redemption_at(c, at - timedelta(seconds=i))
    services.run_monitors(now=at)
    msg = OutboxMessage.objects.filter(kind="voucher_alert").first()
    _subject, body, _html = render_mail(
        template="voucher_alert", context=mail_context.resolve(msg.context), language="de"
    )
    assert "Einlöserate: 11 Einlösungen in den letzten 60 s; höchstens 10 erwartet." in body
    _subject, body, _html = render_mail(
        template="voucher_alert", context=mail_context.resolve(msg.context), language="en"
    )
    assert "Redemption rate: 11 redemptions in the last 60 s; at most 10 expected." in body


def test_the_chart_counts_per_minute_and_scales_the_threshold(make_campaign, redemption_at):  # noqa: F811
    from warenhaus.web.console_promotions import redemptions_chart

    at = now().replace(second=30, microsecond=0)
    c = make_campaign(
        public_code="CHART10",
        expected_redemptions_per_hour=1200,
        monitor_settings={"rate": {"window_seconds": 120, "factor": 2}},
    )
    for i in range(5):
        redemption_at(c, at - timedelta(seconds=i))
    redemption_at(c, at - timedelta(minutes=2))
    redemption_at(c, at - timedelta(hours=4))  # outside the chart
    chart = redemptions_chart(c, at=at)
    assert chart["total"] == 6 and chart["peak"] == 5
    assert [b["count"] for b in chart["busy"]] == [1, 5]
    assert chart["bars"][-1]["count"] == 5 and chart["bars"][-3]["count"] == 1
    # 1200 an hour is 40 per 120 s window, x 2 = 80 per window = 40 per minute
    assert chart["threshold"] == pytest.approx(40) and chart["expected"] == pytest.approx(20)
    assert 0 < chart["threshold_y"] < chart["expected_y"] < chart["height"]
