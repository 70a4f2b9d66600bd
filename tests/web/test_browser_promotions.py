"""The promotions console driven through a real browser: a campaign made by one person and
approved by another, the redemption chart with the monitor's threshold, and an alert
acknowledged; in German and English."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest

from warenhaus.checkout import vouchers as cart_vouchers

from .conftest import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _campaign(author, approver=None, **fields):
    from warenhaus.core.clock import now
    from warenhaus.promotions import services

    body = {
        "name": "Sommeraktion",
        "discount_kind": "fixed",
        "discount_value": "10.00",
        "min_basket": "30.00",
        "budget": "1000.00",
        "total_limit": 100,
        "valid_until": now() + timedelta(days=30),
        "code_mode": "public",
        "public_code": "SOMMER10",
        **fields,
    }
    c = services.create_campaign(actor=author, **body)
    if approver is not None:
        c = services.approve_campaign(campaign_id=c.pk, actor=approver)
    return c


def test_one_person_makes_a_campaign_and_another_approves_it(
    browser_page, new_browser_page, make_user
):
    from warenhaus.promotions.models import Campaign

    make_user(email="aktionen@warenhaus.example", roles=["promotions"])
    make_user(email="freigabe@warenhaus.example", roles=["promotions_approver"])
    page = browser_page
    browser_login(page, "aktionen@warenhaus.example", next_path="/console/")
    page.wait_for_url(re.compile(r"/console/$"))
    page.locator(".console-bar").get_by_role("link", name="Aktionen").click()
    page.wait_for_url(re.compile(r"/console/promotions/$"))
    page.get_by_role("link", name="Neue Aktion").click()
    page.fill("input[name=name]", "Herbstfest")
    page.select_option("select[name=discount_kind]", "fixed")
    page.fill("input[name=discount_value]", "5,00")
    page.fill("input[name=min_basket]", "25,00")
    page.fill("input[name=valid_until]", "2099-12-31T23:59")
    page.fill("input[name=total_limit]", "80")
    page.fill("input[name=budget]", "1.000,00")
    page.select_option("select[name=code_mode]", "public")
    page.fill("input[name=public_code]", "HERBST25")
    page.fill("input[name=expected_redemptions_per_hour]", "120")
    page.get_by_role("button", name="Als Entwurf speichern").click()
    page.wait_for_selector("text=Die Aktion wurde als Entwurf gespeichert.")
    assert page.inner_text("#campaign-status") == "Entwurf"
    c = Campaign.objects.get(name="Herbstfest")
    assert c.status == "draft" and c.total_limit == 80 and c.budget == Decimal("1000.00")
    assert page.locator("#approve-link").count() == 0  # the author has no approve button

    other = new_browser_page()
    browser_login(other, "freigabe@warenhaus.example", next_path=f"/console/promotions/{c.pk}/")
    other.wait_for_url(re.compile(rf"/console/promotions/{c.pk}/$"))
    other.get_by_role("link", name="Prüfen und freigeben").click()
    other.wait_for_url(re.compile(rf"/console/promotions/{c.pk}/approve/$"))
    assert other.inner_text("#worst-amount") == "400,00 €"  # 80 x 5 €, below the budget
    assert other.locator("#dangers").count() == 0
    other.get_by_role("button", name="Freigeben").click()
    other.wait_for_selector("text=Die Aktion wurde freigegeben")
    assert other.inner_text("#campaign-status") == "freigegeben"
    c.refresh_from_db()
    assert c.status == "approved" and c.approved_by.email == "freigabe@warenhaus.example"


def test_a_dangerous_campaign_needs_a_reason_and_the_author_is_refused_in_english(
    browser_page, make_user
):
    from warenhaus.promotions.models import Campaign

    both = make_user(email="beides@warenhaus.example", roles=["promotions", "promotions_approver"])
    author = make_user(email="autor@warenhaus.example", roles=["promotions"])
    own = _campaign(both, name="Own one", public_code="EIGEN10")
    risky = _campaign(
        author,
        name="400 off 401",
        discount_value="400.00",
        min_basket="401.00",
        budget=None,
        total_limit=None,
        public_code="RISKY400",
    )
    page = browser_page
    browser_login(
        page, "beides@warenhaus.example", next_path=f"/en/console/promotions/{own.pk}/approve/"
    )
    page.wait_for_url(re.compile(rf"/en/console/promotions/{own.pk}/approve/$"))
    assert "Someone who did neither must approve it (four eyes)" in page.inner_text("#four-eyes")
    assert page.locator("#approve-form").count() == 0
    page.goto(page.url_for(f"/en/console/promotions/{risky.pk}/approve/"))
    assert page.inner_text("#worst-amount") == "unbounded"
    dangers = page.inner_text("#dangers")
    assert (
        "Neither a total redemption limit nor a budget bounds the cost." in dangers
        and "400 EUR off 401 EUR" in dangers
    )
    # the browser asks for the reason; without the browser's check the server refuses as well
    page.locator("#override-reason").evaluate("el => el.removeAttribute('required')")
    page.get_by_role("button", name="Approve").click()
    assert "dangerous shape" in page.inner_text("#error")
    assert Campaign.objects.get(pk=risky.pk).status == "draft"
    page.fill("#override-reason", "Staff-only campaign, sent to 20 people")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_selector("text=The campaign has been approved")
    assert (
        Campaign.objects.get(pk=risky.pk).approval_override_reason
        == "Staff-only campaign, sent to 20 people"
    )


def test_the_campaign_page_draws_redemptions_with_the_threshold_line(
    browser_page, make_user, make_product, address
):
    from warenhaus.checkout import services as checkout

    author = make_user(email="aktionen@warenhaus.example", roles=["promotions"])
    approver = make_user(email="freigabe@warenhaus.example", roles=["promotions_approver"])
    c = _campaign(
        author,
        approver,
        expected_redemptions_per_hour=600,
        monitor_settings={"rate": {"factor": 2}},
        per_customer_limit=None,
    )
    variant = make_product(price="49.97", on_hand=50).variants.get()
    for i in range(3):
        cart, _ = checkout.create_cart()
        checkout.add_line(cart_id=cart.id, sku=variant.sku, quantity=1)

        cart_vouchers.apply_voucher(cart_id=cart.id, code="SOMMER10", channel="web")
        checkout.place_order(
            cart_id=cart.id,
            email=f"k{i}@example.de",
            shipping_address=address,
            payment_method="invoice",
        )
    page = browser_page
    browser_login(page, "freigabe@warenhaus.example", next_path=f"/console/promotions/{c.pk}/")
    page.wait_for_url(re.compile(rf"/console/promotions/{c.pk}/$"))
    chart = page.locator("#redemption-chart")
    assert chart.is_visible()
    assert page.locator("#redemption-chart rect").count() >= 1
    line = page.locator("#threshold-line")
    assert line.count() == 1
    y = float(line.get_attribute("y1"))
    assert 0 < y < 160  # inside the plot, above the axis
    assert "Schwelle des Raten-Monitors: 20 pro Minute" in page.inner_text("#chart")
    assert "3 Einlösungen" in page.inner_text("#chart")
    page.locator("#chart summary").click()
    assert "3" in page.inner_text("#chart-table")
    assert page.inner_text("#redeemed").startswith("3 / 100")
    page.locator(".lang-switch button[value=en]").click()
    page.wait_for_url(re.compile(rf"/en/console/promotions/{c.pk}/$"))
    assert "threshold of the rate monitor: 20 per minute" in page.inner_text("#chart")


def test_an_alert_is_acknowledged_on_the_alerts_page(browser_page, make_user):
    from warenhaus.core.clock import now
    from warenhaus.promotions.models import Alert

    author = make_user(email="aktionen@warenhaus.example", roles=["promotions"])
    approver = make_user(email="freigabe@warenhaus.example", roles=["promotions_approver"])
    make_user(email="risiko@warenhaus.example", roles=["risk"])
    c = _campaign(author, approver, name="Leck-Aktion")
    at = now()
    alert = Alert.objects.create(
        campaign=c,
        monitor="rate",
        measured=61,
        threshold=10,
        peak=61,
        window_seconds=60,
        paused=True,
        message="61 redemptions in the last 60 s; at most 10 expected.",
        created_at=at,
        last_seen_at=at,
    )
    page = browser_page
    browser_login(page, "risiko@warenhaus.example", next_path="/console/promotions/")
    page.wait_for_url(re.compile(r"/console/promotions/$"))
    assert "1 Alarm" in page.inner_text(f"#campaign-{c.pk}")
    page.get_by_role("link", name="Alarme").first.click()
    page.wait_for_url(re.compile(r"/console/promotions/alerts/$"))
    row = page.locator(f"#alert-{alert.pk}")
    assert "61 Einlösungen in den letzten 60 s; höchstens 10 erwartet." in row.inner_text()
    assert "hat die Aktion pausiert" in row.inner_text()
    row.get_by_role("button", name="Bestätigen").click()
    page.wait_for_selector("text=Der Alarm zu „Leck-Aktion“ wurde bestätigt.")
    assert page.locator(f"#alert-{alert.pk}").count() == 0
    alert.refresh_from_db()
    assert alert.acknowledged_by.email == "risiko@warenhaus.example"
    page.goto(page.url_for("/en/console/promotions/alerts/?all=1"))
    assert "acknowledged by risiko@warenhaus.example" in page.inner_text(f"#alert-{alert.pk}")


def test_the_kill_switch_works_without_javascript(nojs_page, make_user):
    from warenhaus.promotions.models import Code

    author = make_user(email="aktionen@warenhaus.example", roles=["promotions"])
    approver = make_user(email="freigabe@warenhaus.example", roles=["promotions_approver"])
    c = _campaign(author, approver)
    page = nojs_page
    browser_login(page, "freigabe@warenhaus.example", next_path="/console/promotions/kill-switch/")
    page.wait_for_url(re.compile(r"/kill-switch/$"))
    page.fill("#pattern", "SOMMER*")
    page.fill("#pattern-reason", "Code auf Schnäppchenseite")
    page.get_by_role("button", name="Muster sperren").click()
    page.wait_for_selector("text=Jeder Code, der mit SOMMER beginnt")
    assert Code.objects.get(campaign=c).status == "blocked"
    assert "SOMMER*" in page.inner_text("#rules")
