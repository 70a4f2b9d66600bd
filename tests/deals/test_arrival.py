"""A join refused for overload keeps its arrival: the 429 carries ``arrival`` (signed: the deal,
the moment the request reached the server, the caller), and the retry that sends it back queues
from then, ahead of whoever came later and got through first. A token of another deal or
caller, a forged, tampered or expired one is ignored (the join counts from its own arrival); a
client's own ``X-Request-Start`` never sets the arrival, only the server's queue stamp does."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone

from warenhaus.deals import limiter

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.ADMISSION_MAX_IN_FLIGHT = 1
    settings.ADMISSION_WAIT_MS = 0


@pytest.fixture
def deal(make_product):
    """Running, ten units, one admission a minute: the first joiner is let in, the rest wait in line."""
    from warenhaus.deals.services import create_deal

    sku = make_product(price="119.99", on_hand=20).variants.get().sku
    start = timezone.now() - timedelta(seconds=1)
    return create_deal(
        actor=None,
        sku=sku,
        deal_price="49.97",
        units=10,
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        limit_per_customer=1,
        admissions_per_minute=1,
    ).pk


@contextmanager
def _full():
    g = limiter.gate("deal_join")
    assert g.enter(1, 0)
    try:
        yield
    finally:
        g.leave()


def _refused(api, deal, email):
    with _full():
        r = api.post(f"/deals/{deal}/queue", {"email": email})
    assert r.status_code == 429 and r.json()["code"] == "overloaded"
    return r.json()["arrival"]


def _line(deal) -> list[str]:
    from warenhaus.deals.waiting_room import waiting_room

    return [t.data.get("email") for t in waiting_room().first_waiting(deal, 20)]


def test_a_refused_join_that_sends_its_arrival_back_is_ahead_of_those_who_came_later(api, deal):
    assert api.post(f"/deals/{deal}/queue", {"email": "x@example.de"}).json()["state"] == "admitted"
    arrival = _refused(api, deal, "a@example.de")
    time.sleep(0.01)
    later = api.post(f"/deals/{deal}/queue", {"email": "b@example.de"})
    assert later.fast_lane and later.json()["position"] == 1
    retry = api.post(f"/deals/{deal}/queue", {"email": "a@example.de", "arrival": arrival})
    assert retry.fast_lane and retry.status_code == 201 and retry.json()["position"] == 1
    assert _line(deal) == ["a@example.de", "b@example.de"]


def test_without_it_the_retry_queues_from_now(api, deal):
    api.post(f"/deals/{deal}/queue", {"email": "x@example.de"})
    _refused(api, deal, "a@example.de")
    api.post(f"/deals/{deal}/queue", {"email": "b@example.de"})
    assert api.post(f"/deals/{deal}/queue", {"email": "a@example.de"}).json()["position"] == 2


@pytest.mark.parametrize("how", ["other caller", "other deal", "tampered", "forged", "expired"])
def test_an_arrival_that_does_not_check_out_is_ignored(api, deal, make_deal, monkeypatch, how):
    api.post(f"/deals/{deal}/queue", {"email": "x@example.de"})
    email = "a@example.de"
    arrival = _refused(api, deal, email)
    if how == "other caller":
        email = "c@example.de"
    elif how == "other deal":
        arrival = _refused(api, make_deal(), email)
    elif how == "tampered":
        arrival = arrival[:-2] + ("AA" if not arrival.endswith("AA") else "BB")
    elif how == "forged":
        arrival = signing.dumps(
            {"d": deal, "t": time.time() - 60, "h": "0" * 24}, salt="warenhaus.deals.arrival"
        )
    elif how == "expired":
        monkeypatch.setattr(limiter, "ARRIVAL_MAX_AGE", -1)
    time.sleep(0.01)
    api.post(f"/deals/{deal}/queue", {"email": "b@example.de"})
    r = api.post(f"/deals/{deal}/queue", {"email": email, "arrival": arrival})
    assert r.status_code == 201 and r.json()["position"] == 2  # behind b: counted from now


def test_django_gives_the_same_arrival_and_only_joins_get_one(client, deal, settings):
    settings.DEALS_FAST_LANE = False
    with _full():
        r = client.post(
            f"/api/v1/deals/{deal}/queue",
            data='{"email": "a@example.de"}',
            content_type="application/json",
        )
    assert r.status_code == 429 and not getattr(r, "fast_lane", False)
    token = signing.loads(r.json()["arrival"], salt="warenhaus.deals.arrival")
    assert token["d"] == deal and abs(token["t"] - time.time()) < 5
    g = limiter.gate("deal_poll")
    assert g.enter(1, 0)
    try:
        poll = client.get(f"/api/v1/deals/{deal}/queue/abc")
    finally:
        g.leave()
    assert poll.status_code == 429 and "arrival" not in poll.json()


def test_only_the_servers_own_queue_stamp_sets_the_arrival(api, deal, monkeypatch):
    def told(start: float, mark: str = "") -> float:
        headers = {"X-Request-Start": f"t={int(start * 1_000_000)}{mark}"}
        with _full():
            token = api.post(
                f"/deals/{deal}/queue", {"email": "a@example.de"}, headers=headers
            ).json()["arrival"]
        return signing.loads(token, salt="warenhaus.deals.arrival")["t"]

    assert told(time.time() - 30) > time.time() - 2  # a client's header: arrival is now
    monkeypatch.setattr(
        limiter, "_server_stamps", "s3cr3t"
    )  # as under gunicorn, whose hook marks its own stamp
    assert told(time.time() - 5, " wh=guess") > time.time() - 2  # a stamp without the server's mark
    assert abs(told(time.time() - 0.2, " wh=s3cr3t") - (time.time() - 0.2)) < 1
    # a client trickling its request in for minutes dates its place at most a few seconds back
    assert told(time.time() - 120, " wh=s3cr3t") > time.time() - limiter.ARRIVAL_STAMP_MAX_AGE - 2


def test_someone_turned_away_before_the_start_is_in_the_pre_queues_draw(make_product):
    from warenhaus.deals import services
    from warenhaus.deals.waiting_room import waiting_room
    from warenhaus.deals.waiting_room.base import PRE_QUEUE_SPAN

    sku = make_product(price="119.99", on_hand=20).variants.get().sku
    start = timezone.now() - timedelta(seconds=5)
    deal = services.create_deal(
        actor=None,
        sku=sku,
        deal_price="49.97",
        units=10,
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        admissions_per_minute=1,
    )
    services.join_queue(deal_id=deal.pk, guest="session:x@example.de", email="x@example.de")
    services.join_queue(deal_id=deal.pk, guest="session:late@example.de", email="late@example.de")
    early = services.join_queue(
        deal_id=deal.pk,
        guest="session:early@example.de",
        email="early@example.de",
        arrived=start.timestamp() - 2,
    )
    ticket = waiting_room().get(deal.pk, early["ticket"])
    assert ticket.order_key < PRE_QUEUE_SPAN and early["position"] == 1


def test_the_storefronts_join_button_keeps_the_place_too(client, deal, settings):
    """A refused join in the browser gets the waiting page, which comes back to the deal with the
    arrival; the join button sends it."""
    import re

    from warenhaus.deals import services

    settings.ADMISSION_RETRY_AFTER, settings.ADMISSION_RETRY_JITTER = 1, 0
    services.join_queue(
        deal_id=deal, guest="session:x@example.de", email="x@example.de"
    )  # let in: the line starts behind them
    assert (
        client.get(f"/deals/{deal}/").status_code == 200
    )  # the browser has the page (and its cookies)
    g = limiter.gate("deal_page")
    assert g.enter(1, 0)
    try:
        refused = client.post(f"/deals/{deal}/join/", {"quantity": "1", "email": "a@example.de"})
    finally:
        g.leave()
    assert (
        refused.status_code == 429
        and "Platz in der Warteschlange bleibt Ihnen" in refused.content.decode()
    )
    url = re.search(r'http-equiv="refresh" content="1; url=([^"]+)"', refused.content.decode())[
        1
    ].replace("&amp;", "&")
    assert url.startswith(f"/deals/{deal}/join/?arrival=")
    time.sleep(0.01)
    services.join_queue(
        deal_id=deal, guest="session:b@example.de", email="b@example.de"
    )  # came later, got through first
    back = client.get(url)
    assert back.status_code == 302 and back["Location"].startswith(f"/deals/{deal}/?arrival=")
    page = client.get(back["Location"])
    assert (
        'name="arrival"' in page.content.decode() and 'id="arrival-kept"' in page.content.decode()
    )
    arrival = re.search(r'name="arrival" value="([^"]+)"', page.content.decode())[1]
    # the same browser, whatever it types this time (here: another address)
    joined = client.post(
        f"/deals/{deal}/join/", {"quantity": "1", "email": "a2@example.de", "arrival": arrival}
    )
    assert joined.status_code == 302
    assert _line(deal) == ["a2@example.de", "b@example.de"]
    # another browser presenting the same link gets no earlier place
    from django.test import Client

    other = Client()
    other.get(f"/deals/{deal}/")
    assert (
        other.post(
            f"/deals/{deal}/join/", {"quantity": "1", "email": "c@example.de", "arrival": arrival}
        ).status_code
        == 302
    )
    assert _line(deal)[-1] == "c@example.de"


def test_a_join_that_shows_nobody_gets_no_arrival(client, deal, settings):
    """Without an identity in the request (no address, cart, token or cookie) a token would
    be anyone's: the 429 carries none."""
    with _full():
        r = client.post(f"/api/v1/deals/{deal}/queue", data="{}", content_type="application/json")
    assert r.status_code == 429 and "arrival" not in r.json()


def test_an_anonymous_cart_cannot_pass_its_arrival_to_another_cart(api, deal):
    from warenhaus.checkout.services import create_cart

    first, second = create_cart()[0].id, create_cart()[0].id
    api.post(f"/deals/{deal}/queue", {"email": "x@example.de"})
    with _full():
        arrival = api.post(f"/deals/{deal}/queue", {"cart_id": first}).json()["arrival"]
    time.sleep(0.01)
    api.post(f"/deals/{deal}/queue", {"email": "b@example.de"})
    assert (
        api.post(f"/deals/{deal}/queue", {"cart_id": second, "arrival": arrival}).json()["position"]
        == 2
    )
    assert (
        api.post(f"/deals/{deal}/queue", {"cart_id": first, "arrival": arrival}).json()["position"]
        == 1
    )


@pytest.mark.parametrize("refused", [False, True])
def test_bad_input_gets_a_4xx_not_a_500(api, deal, refused):
    """A deal id of digits that int() cannot read, a body nested thousands of levels deep."""
    import contextlib

    with _full() if refused else contextlib.nullcontext():
        odd = api.post("/deals/²/queue", {"email": "a@example.de", "arrival": "x"})
        deep = api.client.post(
            f"/api/v1/deals/{deal}/queue", data="[" * 3000, content_type="application/json"
        )
    assert 400 <= odd.status_code < 500
    assert deep.status_code == (429 if refused else 400), deep.content
    if not refused:
        assert deep.json()["code"] == "malformed_json"
