"""The flash-deal pages: the deal page with its prices and countdown, joining the queue from it
(held units land in the session's cart), the waiting room and its fragment, sold out with the
wait list, the offer link of the wait-list mail, and the console's list, form and live
dashboard with who may do what, in German and English."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.notifications.conftest import clock  # noqa: F401  (moves "now" for the live server too: one process)
from warenhaus.core.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(make_user):
    return make_user(roles=["pricing"])


@pytest.fixture
def new_deal(make_product, manager):
    from warenhaus.deals import services

    def make(
        *, units=3, limit=1, starts_in=60, hold_minutes=10, pace=600, title="Betriebssystem Pro"
    ):
        """A deal of an item at 119.99 for 49.97, starting ``starts_in`` seconds from now."""
        variant = make_product(
            title=title, price="119.99", on_hand=50, sku=f"DEAL-{uuid.uuid4().hex[:6]}"
        ).variants.get()
        start = timezone.now() + timedelta(seconds=starts_in)
        return services.create_deal(
            actor=manager,
            sku=variant.sku,
            deal_price="49.97",
            units=units,
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            limit_per_customer=limit,
            hold_minutes=hold_minutes,
            admissions_per_minute=pace,
        )

    return make


def _cart_lines(client):
    from warenhaus.checkout.models import CartLine

    return list(CartLine.objects.filter(cart_id=client.session.get("cart_id")))


def _sell_out(deal):
    """Every unit held by someone else (another session's ticket, admitted)."""
    from warenhaus.deals import services

    for i in range(deal.units):
        services.join_queue(deal_id=deal.pk, guest=f"session:other-{i}")
    services.admit_due(deal)


# --- the shopper's pages -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix, texts",
    [
        (
            "",
            [
                "Niedrigster Preis der letzten 30 Tage",
                "Regulärer Preis",
                "In die Warteschlange",
                "Beginnt in",
            ],
        ),
        (
            "/en",
            ["Lowest price of the last 30 days", "Regular price", "Join the queue", "Starts in"],
        ),
    ],
)
def test_deal_page_before_the_start_shows_prices_and_countdown(client, new_deal, prefix, texts):
    deal = new_deal(starts_in=3600)
    page = client.get(f"{prefix}/deals/{deal.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    for text in texts:
        assert text in html
    assert "Betriebssystem Pro" in html and 'data-countdown="' in html
    assert re.search(r'id="lowest-price">(119,99\xa0?\s?€|€119.99)', html)
    assert ("49,97 €" if not prefix else "€49.97") in html


def test_deal_list_and_home_teaser(client, new_deal):
    deal = new_deal(title="Deal im Angebot")
    assert "Deal im Angebot" in client.get("/deals/").content.decode()
    home = client.get("/").content.decode()
    assert 'id="deal-teaser"' in home and f"/deals/{deal.pk}/" in home
    assert "Flash deals" in client.get("/en/deals/").content.decode()


def test_unknown_deal_is_a_404(client):
    assert client.get("/deals/999999/").status_code == 404


def test_a_reloaded_join_goes_back_to_the_deal(client, new_deal):
    """The admission limiter's page reloads the address of a refused join with a GET."""
    deal = new_deal()
    assert client.get(f"/deals/{deal.pk}/join/")["Location"] == f"/deals/{deal.pk}/"
    assert (
        client.get(f"/en/deals/{deal.pk}/waitlist/")["Location"] == f"/en/deals/{deal.pk}/#waitlist"
    )


def test_joining_after_the_start_admits_into_the_session_cart(client, new_deal, clock):
    deal = new_deal(starts_in=60)
    clock.advance(61)
    response = client.post(f"/deals/{deal.pk}/join/", {"quantity": "1"})
    assert response.status_code == 302
    m = re.match(rf"/deals/{deal.pk}/queue/([^/]+)/$", response["Location"])
    assert m
    ticket = m.group(1)
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and 'id="admitted"' in html
    lines = _cart_lines(client)
    assert len(lines) == 1 and lines[0].deal_hold_id and str(lines[0].price_when_added) == "49.97"
    # the fragment htmx polls sends the shopper to the cart
    frag = client.get(f"/deals/{deal.pk}/queue/{ticket}/status/", HTTP_HX_REQUEST="true")
    assert frag["HX-Redirect"] == "/cart/"
    cart = client.get("/cart/").content.decode()
    assert "Für Sie zum Aktionspreis reserviert bis" in cart and "data-countdown" in cart
    # the deal page remembers the visitor's place
    assert 'id="your-place"' in client.get(f"/deals/{deal.pk}/").content.decode()


def test_joining_before_the_start_waits_and_the_page_refreshes_without_javascript(client, new_deal):
    deal = new_deal(starts_in=600)
    response = client.post(f"/deals/{deal.pk}/join/", {"quantity": "1"})
    html = client.get(response["Location"]).content.decode()
    # the page asks again as the server says, within 2 to 5 s (here: soon, though the start is far)
    every = re.search(r'hx-trigger="every (\d+)s"', html)
    assert 'id="queue-status"' in html and every and int(every.group(1)) == 5
    assert 'http-equiv="refresh"' in html and 'id="refresh-link"' in html
    assert "nach dem Zufallsprinzip" in html or "zufällig" in html
    assert not _cart_lines(client)


def test_a_quantity_above_the_limit_is_refused_readably(client, new_deal):
    deal = new_deal(limit=2)
    page = client.post(f"/deals/{deal.pk}/join/", {"quantity": "3"})
    assert page.status_code == 409
    assert "Höchstens 2 pro Kunde" in page.content.decode()


def test_sold_out_shows_the_wait_list_form_and_then_the_position(client, new_deal, clock):
    deal = new_deal(units=2, starts_in=60)
    clock.advance(61)
    _sell_out(deal)
    page = client.get(f"/deals/{deal.pk}/").content.decode()
    assert 'id="waitlist"' in page and 'name="email"' in page and 'id="join-form"' not in page
    response = client.post(
        f"/deals/{deal.pk}/waitlist/", {"quantity": "1", "email": "erika@example.de"}
    )
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert 'id="waitlist-position"' in page and "Platz 1" in page


def test_a_waiting_shopper_is_told_plainly_when_the_last_unit_is_sold(
    client, new_deal, clock, address
):
    """Everything held: the shopper waits in line (held units may come back); once the last unit
    is bought, the waiting room turns into the wait list (joined with the address given)."""
    from warenhaus.checkout import services as checkout
    from warenhaus.deals import services

    deal = new_deal(units=1, starts_in=60)
    clock.advance(61)
    other = services.join_queue(deal_id=deal.pk, guest="session:other")
    assert other["state"] == "admitted"
    response = client.post(
        f"/deals/{deal.pk}/join/", {"quantity": "1", "email": "erika@example.de"}
    )
    queue_url = response["Location"]
    assert 'id="position">1<' in client.get(queue_url).content.decode()
    checkout.place_order(
        cart_id=other["cart_id"],
        email="max@example.de",
        shipping_address=address,
        payment_method="invoice",
    )
    page = client.get(queue_url).content.decode()
    assert (
        'data-state="sold_out"' in page and 'id="waitlist-position"' in page and "Platz 1" in page
    )
    assert (
        'id="waitlist-position"' in client.get(f"/deals/{deal.pk}/").content.decode()
    )  # remembered
    # a newcomer gets the same friendly answer at once, never an error page
    other_client = type(client)()
    response = other_client.post(
        f"/deals/{deal.pk}/join/", {"quantity": "1", "email": "lena@example.de"}
    )
    assert response.status_code == 302
    assert "Platz 2" in other_client.get(response["Location"]).content.decode()


def test_wait_list_form_needs_an_email(client, new_deal, clock):
    deal = new_deal(units=1, starts_in=60)
    clock.advance(61)
    _sell_out(deal)
    page = client.post(f"/deals/{deal.pk}/waitlist/", {"quantity": "1"})
    assert page.status_code == 422 and "E-Mail-Adresse" in page.content.decode()
    response = client.post(
        f"/deals/{deal.pk}/waitlist/", {"quantity": "1", "email": "max@example.de"}
    )
    assert response.status_code == 302
    assert "Platz 1" in client.get(f"/en/deals/{deal.pk}/").content.decode().replace(
        "place 1", "Platz 1"
    )


def test_the_offer_link_opens_the_cart_with_the_offered_units(client, new_deal, clock):
    from warenhaus.deals import services
    from warenhaus.deals.models import Hold, WaitlistEntry

    deal = new_deal(units=1, starts_in=60)
    clock.advance(61)
    _sell_out(deal)
    services.join_waitlist(
        deal_id=deal.pk, who="session:erika@example.de", email="erika@example.de"
    )
    entry = WaitlistEntry.objects.get(deal=deal)
    holder = Hold.objects.get(deal=deal, source="queue")
    services.release_hold(hold_id=holder.pk)  # the unit comes back and is offered to the wait list
    entry.refresh_from_db()
    assert entry.status == "offered"
    response = client.get(f"/deals/offer/{entry.token}/")
    assert response.status_code == 302 and response["Location"] == "/cart/"
    cart = client.get("/cart/").content.decode()
    assert "Betriebssystem Pro" in cart and "reserviert bis" in cart
    # once the offer lapsed, the link says so plainly
    clock.advance(deal.offer_minutes * 60 + 1)
    services.sweep()
    lapsed = client.get(f"/deals/offer/{entry.token}/")
    assert lapsed.status_code == 200 and 'id="offer-lapsed"' in lapsed.content.decode()
    assert client.get("/deals/offer/unknown-token/").status_code == 404


def test_the_offer_link_of_a_customer_account_asks_them_to_log_in(
    client, login_client, make_user, new_deal, clock
):
    from warenhaus.deals import services
    from warenhaus.deals.models import Hold, WaitlistEntry

    shopper = make_user(email="erika@example.de")
    deal = new_deal(units=1, starts_in=60)
    clock.advance(61)
    _sell_out(deal)
    services.join_waitlist(deal_id=deal.pk, who=f"user:{shopper.pk}", email=shopper.email)
    services.release_hold(hold_id=Hold.objects.get(deal=deal, source="queue").pk)
    entry = WaitlistEntry.objects.get(deal=deal)
    response = client.get(f"/deals/offer/{entry.token}/")
    assert response.status_code == 302 and response["Location"].startswith("/account/login/")
    response = login_client(shopper).get(f"/deals/offer/{entry.token}/")
    assert response.status_code == 302 and response["Location"] == "/cart/"
    assert "reserviert bis" in client.get("/cart/").content.decode()


def test_the_waiting_room_says_plainly_when_the_hold_ran_out(client, new_deal, clock):
    from warenhaus.deals import services

    deal = new_deal(starts_in=60, hold_minutes=5)
    clock.advance(61)
    queue_url = client.post(f"/deals/{deal.pk}/join/", {"quantity": "1"})["Location"]
    clock.advance(5 * 60 + 1)
    services.sweep()
    page = client.get(queue_url).content.decode()
    assert 'id="expired"' in page and "abgelaufen" in page
    deal_page = client.get(f"/deals/{deal.pk}/").content.decode()
    assert (
        "Ihre Reservierung ist abgelaufen." in deal_page and 'id="join-form"' not in deal_page
    )  # one place per person
    assert client.get(f"/deals/{deal.pk}/queue/not-a-ticket/").status_code == 404


def test_an_expired_hold_is_said_plainly_in_the_cart(client, new_deal, clock):
    from warenhaus.deals import services

    deal = new_deal(starts_in=60, hold_minutes=5)
    clock.advance(61)
    client.post(f"/deals/{deal.pk}/join/", {"quantity": "1"})
    clock.advance(5 * 60 + 1)
    services.sweep()
    cart = client.get("/cart/").content.decode()
    assert "war für Sie bis" in cart and "regulären Preis" in cart
    en = client.get("/en/cart/").content.decode()
    assert "was held for you until" in en and "regular price" in en


# --- the console -------------------------------------------------------------------------------


def _console_form(item, **over):
    start = timezone.localtime() + timedelta(hours=1)
    body = {
        "sku": item,
        "deal_price": "49,97",
        "units": "5",
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "limit_per_customer": "1",
        "hold_minutes": "10",
        "admissions_per_minute": "100",
    }
    body.update(over)
    return body


@pytest.mark.parametrize("role", ["pricing", "promotions", "support", "risk"])
def test_console_pages_for_roles_that_may_see(login_client, make_user, new_deal, role):
    deal = new_deal()
    client = login_client(make_user(roles=[role]))
    assert client.get("/console/deals/").status_code == 200
    page = client.get(f"/console/deals/{deal.pk}/")
    html = page.content.decode()
    assert page.status_code == 200 and 'id="deal-tiles"' in html and 'hx-trigger="every 3s"' in html
    assert ('id="cancel-deal"' in html) == (role in ("pricing", "promotions"))
    assert client.get(f"/console/deals/{deal.pk}/live/").status_code == 200
    assert "Blitzangebote" in client.get("/console/").content.decode()


@pytest.mark.parametrize("role", ["catalog", None])
def test_console_deals_forbidden_for_others(login_client, make_user, new_deal, role):
    deal = new_deal()
    client = login_client(make_user(roles=[role] if role else []))
    for path in ("/console/deals/", f"/console/deals/{deal.pk}/", "/console/deals/new/"):
        assert client.get(path).status_code == 403
    assert client.post(f"/console/deals/{deal.pk}/cancel/", {"reason": "x"}).status_code == 403


def test_only_managers_make_deals(login_client, make_user):
    client = login_client(make_user(roles=["support"]))
    assert client.get("/console/deals/new/").status_code == 403


def test_console_creates_a_deal_audited(login_client, manager, make_product):
    from warenhaus.deals.models import Deal

    variant = make_product(
        title="Office-Paket", price="119.99", on_hand=20, sku="OFFICE-1"
    ).variants.get()
    client = login_client(manager)
    assert client.get("/en/console/deals/new/").status_code == 200
    response = client.post("/console/deals/new/", _console_form(variant.sku))
    assert response.status_code == 302
    deal = Deal.objects.get(variant=variant)
    assert str(deal.deal_price) == "49.97" and deal.units == 5 and deal.admissions_per_minute == 100
    assert timezone.localtime(deal.starts_at).utcoffset() == timezone.localtime().utcoffset()
    assert AuditEntry.objects.filter(action="deal.create", actor=manager).count() == 1
    assert "Office-Paket" in client.get(response["Location"]).content.decode()


@pytest.mark.parametrize(
    "over, text",
    [
        ({"deal_price": "129,99"}, "unter dem regulären Preis"),
        ({"sku": "NOPE"}, "keinen Artikel mit dieser Artikelnummer"),
        ({"units": "500"}, "verfügbar"),
        ({"units": "0"}, "Bitte korrigieren"),
        ({"ends_at": "2020-01-01T10:00"}, "Das Ende muss nach dem Beginn liegen."),
    ],
)
def test_console_bad_input_reads_and_makes_nothing(login_client, manager, make_product, over, text):
    from warenhaus.deals.models import Deal

    variant = make_product(price="119.99", on_hand=20, sku="OFFICE-2").variants.get()
    page = login_client(manager).post("/console/deals/new/", _console_form(variant.sku, **over))
    assert page.status_code in (404, 409, 422)
    assert text in page.content.decode()
    assert not Deal.objects.exists()


def test_console_cancels_with_a_reason_audited(login_client, manager, new_deal):
    deal = new_deal()
    client = login_client(manager)
    refused = client.post(f"/console/deals/{deal.pk}/cancel/", {"reason": " "})
    assert refused.status_code == 422 and "Grund" in refused.content.decode()
    response = client.post(
        f"/console/deals/{deal.pk}/cancel/", {"reason": "Falscher Preis eingetragen"}
    )
    assert response.status_code == 302
    deal.refresh_from_db()
    assert deal.cancelled_at is not None
    entry = AuditEntry.objects.get(action="deal.cancel")
    assert entry.reason == "Falscher Preis eingetragen" and entry.actor == manager


def test_dashboard_chart_shows_admissions(login_client, manager, new_deal, clock):
    from warenhaus.deals import services

    deal = new_deal(starts_in=60)
    clock.advance(61)
    services.join_queue(deal_id=deal.pk, guest="session:s1")
    services.admit_due(deal)
    html = login_client(manager).get(f"/en/console/deals/{deal.pk}/").content.decode()
    assert (
        'id="deal-chart"' in html and 'class="bar-admitted"' in html and 'id="chart-table"' in html
    )


def test_after_buying_and_after_letting_the_units_go_the_pages_say_what_happened(
    client, new_deal, clock, address
):
    """A bought turn is not "your turn, go to the cart" any more; units taken out of the cart
    are said to have gone to the next person (and the API's poll answers one of its four
    states: ``expired``, the hold ``released``)."""
    from warenhaus.checkout import services as checkout
    from warenhaus.deals import services

    deal = new_deal(units=2, starts_in=60)
    clock.advance(61)
    queue_url = client.post(f"/deals/{deal.pk}/join/", {"quantity": "1"})["Location"]
    checkout.place_order(
        cart_id=client.session["cart_id"],
        email="erika@example.de",
        shipping_address=address,
        payment_method="invoice",
    )
    for url in (queue_url, f"/deals/{deal.pk}/"):
        page = client.get(url).content.decode()
        assert (
            'id="bought"' in page
            and "Sie haben dieses Angebot gekauft" in page
            and 'id="to-cart"' not in page
        )

    other = type(client)()
    ticket = (
        other.post(f"/deals/{deal.pk}/join/", {"quantity": "1"})["Location"]
        .rstrip("/")
        .rsplit("/", 1)[1]
    )
    [line] = _cart_lines(other)
    checkout.remove_line(cart_id=other.session["cart_id"], sku=line.variant.sku)
    status = services.ticket_status(deal_id=deal.pk, ticket_id=ticket)
    assert (status["state"], status["hold"]["status"]) == ("expired", "released")
    page = other.get(f"/deals/{deal.pk}/queue/{ticket}/").content.decode()
    assert 'id="released"' in page and "an die nächste Person" in page
    assert "went to the next person in line" in other.get(f"/en/deals/{deal.pk}/").content.decode()


def test_the_wait_list_form_while_units_are_free_says_to_queue(client, new_deal, clock):
    deal = new_deal(units=2, starts_in=60)
    clock.advance(61)
    page = client.post(
        f"/deals/{deal.pk}/waitlist/", {"quantity": "1", "email": "zu-frueh@example.de"}
    )
    assert page.status_code == 409 and "noch Stück frei" in page.content.decode()
    from warenhaus.deals.models import WaitlistEntry

    assert not WaitlistEntry.objects.filter(deal=deal).exists()


def test_the_cart_says_when_held_units_took_the_place_of_regular_ones(client, new_deal, clock):
    deal = new_deal(starts_in=60)
    clock.advance(61)
    client.post("/cart/add/", {"sku": deal.variant.sku, "quantity": 3})
    client.post(f"/deals/{deal.pk}/join/", {"quantity": "1"})
    [line] = _cart_lines(client)
    assert line.deal_hold_id and line.quantity == 1
    cart = client.get("/cart/").content.decode()
    assert "Die 3 × Betriebssystem Pro zum regulären Preis in Ihrem Warenkorb wurden durch" in cart
    assert (
        "The 3 × Betriebssystem Pro at the regular price in your cart were replaced"
        in client.get("/en/cart/").content.decode()
    )
    assert 'class="has-problem"' not in cart  # it informs; the line is not marked
    checkout_page = client.get("/checkout/").content.decode()
    assert (
        "In Ihrem Warenkorb hat sich etwas geändert." not in checkout_page
    )  # nor is the checkout held up
