"""Flash deals through a real browser (Debian's Chromium via Playwright) against a live server:
the countdown and the 30-day lowest price before the start, the waiting room turning to
"admitted" by itself, the cart's hold countdown and checkout at the deal price, the wait list
when everything is taken, the staff dashboard with its chart, English, and no JavaScript."""

from __future__ import annotations

import re

import pytest

from .conftest import browser_login
from .test_deals_pages import clock, manager, new_deal  # noqa: F401  (the same deals as the view tests)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _checkout(page):
    page.get_by_role("link", name="Zur Kasse").click()
    page.wait_for_url(re.compile(r"/checkout/$"))
    for name, value in {
        "email": "gast@example.de",
        "name": "Erika Mustermann",
        "street": "Heidestraße 17",
        "postal_code": "51147",
        "city": "Köln",
    }.items():
        page.fill(f"input[name={name}]", value)
    page.check("input[name=payment_method][value=test]")
    page.select_option("select[name=test_outcome]", "approve")
    page.get_by_role("button", name="Zahlungspflichtig bestellen").click()
    page.wait_for_url(re.compile(r"/order/WH-[A-Z0-9]+/$"))
    return page.inner_text("#order-number")


def test_shopper_waits_for_the_start_is_admitted_and_buys_at_the_deal_price(
    browser_page, new_deal, clock
):
    from warenhaus.deals.models import Deal
    from warenhaus.orders.models import Order

    page = browser_page
    deal = new_deal(starts_in=600)
    page.goto(page.url_for(f"/deals/{deal.pk}/"))
    assert "Niedrigster Preis der letzten 30 Tage" in page.inner_text(".deal-facts")
    assert (
        page.inner_text("#lowest-price") == "119,99 €"
        and page.inner_text("#deal-price") == "49,97 €"
    )
    countdown = page.locator("#countdown")
    first = countdown.inner_text()
    assert re.fullmatch(r"\d+:\d\d", first)
    page.wait_for_function(
        f"document.querySelector('#countdown').innerText !== {first!r}"
    )  # it counts down
    page.get_by_role("button", name="In die Warteschlange").click()
    page.wait_for_url(re.compile(rf"/deals/{deal.pk}/queue/[^/]+/$"))
    assert page.locator("#position-pending").is_visible()
    clock.advance(601)  # the deal starts; the next poll of the waiting room lets the shopper in
    page.wait_for_url(re.compile(r"/cart/$"), timeout=15_000)
    hold = page.locator("#cart .hold-note")
    assert "Für Sie zum Aktionspreis reserviert bis" in hold.inner_text()
    assert (
        re.search(r"\d+:\d\d", hold.locator(".countdown").inner_text())
        and hold.locator(".countdown").is_visible()
    )
    assert "49,97" in page.inner_text("#cart")
    number = _checkout(page)
    order = Order.objects.get(number=number)
    assert [str(line.unit_price) for line in order.lines.all()] == ["49.97"]
    assert Deal.objects.get(pk=deal.pk).sold == 1


def test_a_visitor_finds_everything_taken_and_joins_the_wait_list(browser_page, new_deal, clock):
    from warenhaus.deals import services

    deal = new_deal(units=1, starts_in=60)
    clock.advance(61)
    services.join_queue(deal_id=deal.pk, guest="session:someone-else")
    services.admit_due(deal)
    page = browser_page
    page.goto(page.url_for(f"/deals/{deal.pk}/"))
    assert "Alle Einheiten sind gerade verkauft oder reserviert" in page.inner_text("#waitlist")
    assert page.locator("#join-form").count() == 0
    page.fill("#waitlist-email", "erika@example.de")
    page.get_by_role("button", name="Auf die Warteliste").click()
    assert "auf Platz 1" in page.inner_text("#waitlist-position")


def test_staff_watch_the_dashboard_with_its_chart(browser_page, new_deal, manager, clock):
    from warenhaus.deals import services

    deal = new_deal(starts_in=60)
    clock.advance(61)
    for i in range(2):
        services.join_queue(deal_id=deal.pk, guest=f"session:s{i}")
    services.admit_due(deal)
    page = browser_page
    browser_login(page, manager.email, next_path="/console/")
    page.wait_for_url(re.compile(r"/console/$"))
    page.get_by_role("link", name="Blitzangebote").click()
    page.get_by_role("link", name="Betriebssystem Pro").click()
    assert page.inner_text("#tile-admitted .n") == "2" and page.inner_text("#tile-held .n") == "2"
    assert page.locator("#deal-chart rect.bar-admitted").count() >= 1
    # the tiles follow along (htmx): someone else joins and is let in
    services.join_queue(deal_id=deal.pk, guest="session:s9")
    services.admit_due(deal)
    page.wait_for_function(
        "document.querySelector('#tile-admitted .n').innerText === '3'", timeout=10_000
    )
    page.locator("#chart details summary, #chart summary").first.click()
    assert page.locator("#chart-table tbody tr").count() >= 1


def test_english_shopper_is_admitted_and_sees_the_hold_countdown(browser_page, new_deal, clock):
    deal = new_deal(starts_in=60)
    clock.advance(61)
    page = browser_page
    page.goto(page.url_for(f"/en/deals/{deal.pk}/"))
    assert page.inner_text("#lowest-price") == "€119.99"
    assert "Lowest price of the last 30 days" in page.content()
    page.get_by_role("button", name="Join the queue").click()
    # let in at once (the pace allows it), the waiting room says so and links to the cart
    page.wait_for_selector("#admitted")
    assert "It is your turn!" in page.inner_text("#admitted")
    page.get_by_role("link", name="Go to the cart").click()
    page.wait_for_url(re.compile(r"/cart/$"))
    assert "Reserved for you at the deal price until" in page.inner_text("#cart .hold-note")


def test_the_waiting_room_works_without_javascript(nojs_page, new_deal, clock):
    deal = new_deal(starts_in=600)
    page = nojs_page
    page.goto(page.url_for(f"/deals/{deal.pk}/"))
    assert "Beginnt am" in page.inner_text("#countdown-box")  # the start time, not a running clock
    page.get_by_role("button", name="In die Warteschlange").click()
    page.wait_for_url(re.compile(rf"/deals/{deal.pk}/queue/[^/]+/$"))
    assert page.locator("#position-pending").is_visible()
    clock.advance(601)
    page.get_by_role("link", name="Jetzt aktualisieren").click()
    page.wait_for_selector("#admitted")
    page.get_by_role("link", name="Zum Warenkorb").click()
    page.wait_for_url(re.compile(r"/cart/$"))
    assert "Für Sie zum Aktionspreis reserviert bis" in page.inner_text("#cart .hold-note")


def test_a_poll_refused_in_a_rush_is_skipped_and_the_waiting_room_carries_on(
    browser_page, new_deal, clock
):
    """The admission limiter answers 429 when the deal pages are overloaded: the waiting room
    keeps its place on the page and simply polls again."""
    deal = new_deal(starts_in=600)
    page = browser_page
    page.goto(page.url_for(f"/deals/{deal.pk}/"))
    page.get_by_role("button", name="In die Warteschlange").click()
    page.wait_for_url(re.compile(rf"/deals/{deal.pk}/queue/[^/]+/$"))
    refused = []

    def overloaded(route):
        if len(refused) < 2:
            refused.append(route.request.url)
            route.fulfill(
                status=429,
                headers={"Retry-After": "2", "Content-Type": "text/html; charset=utf-8"},
                body="<!doctype html><html><body><h1>Einen Moment, bitte</h1></body></html>",
            )
        else:
            route.continue_()

    page.route(re.compile(r"/status/$"), overloaded)
    for _ in range(40):
        if len(refused) == 2:
            break
        page.wait_for_timeout(250)
    assert len(refused) == 2
    assert page.locator("#position-pending").is_visible() and "Einen Moment" not in page.content()
    clock.advance(601)
    page.wait_for_url(re.compile(r"/cart/$"), timeout=15_000)


def test_a_join_turned_away_in_a_rush_keeps_its_place(browser_page, new_deal, settings):
    """The server turns the join away (429, the waiting page); the page comes back by itself to
    the deal, which says the place is kept, and the join button takes it: ahead of someone who
    came later and got through first."""
    from warenhaus.deals import limiter, services
    from warenhaus.deals.waiting_room import waiting_room

    settings.ADMISSION_MAX_IN_FLIGHT, settings.ADMISSION_WAIT_MS = 1, 0
    settings.ADMISSION_RETRY_AFTER, settings.ADMISSION_RETRY_JITTER = 1, 0
    deal = new_deal(starts_in=-1, units=5, pace=1)
    services.join_queue(
        deal_id=deal.pk, guest="session:erste@example.de", email="erste@example.de"
    )  # let in; the line starts behind them
    page = browser_page
    page.goto(page.url_for(f"/deals/{deal.pk}/"))
    page.fill("#join-email", "frueh@example.de")
    gate = limiter.gate("deal_page")
    assert gate.enter(1, 0)
    try:
        page.get_by_role("button", name="In die Warteschlange").click()
        page.wait_for_selector("text=Einen Moment, bitte")
        assert "Ihr Platz in der Warteschlange bleibt Ihnen" in page.inner_text("main")
        services.join_queue(
            deal_id=deal.pk, guest="session:spaeter@example.de", email="spaeter@example.de"
        )  # later, but through first
    finally:
        gate.leave()
    page.wait_for_selector("#arrival-kept", timeout=15_000)  # back on the deal's page by itself
    assert "zählt ab Ihrem ersten Versuch" in page.inner_text("#arrival-kept")
    page.fill(
        "#join-email", "frueh@example.de"
    )  # the field is empty again: the browser is what counts
    page.get_by_role("button", name="In die Warteschlange").click()
    page.wait_for_url(re.compile(rf"/deals/{deal.pk}/queue/[^/]+/$"))
    assert [t.data.get("email") for t in waiting_room().first_waiting(deal.pk, 10)] == [
        "frueh@example.de",
        "spaeter@example.de",
    ]
