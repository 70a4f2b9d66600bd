"""A guest's turn in the waiting room is theirs alone (issue 13, finding 1).

The probe took over a guest's ticket, cart and live hold by naming the guest's e-mail address,
over the API and in the storefront, and made a victim's later join land on the attacker's
ticket by joining first under the victim's address. A turn now belongs to a capability the guest
holds (their cart, their browser session) or is new; an address is only where the wait list
writes and a household key."""

from __future__ import annotations

import pytest
from django.test import Client

from .test_deal_flow import ADDRESS, _checkout, backend, clock, new_deal, staff  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

VICTIM = "h1-guest@example.org"


def _cart(api) -> str:
    return api.post("/carts", {}).json()["id"]


def _revealed(answer: dict, victim: dict) -> set[str]:
    """What of the victim's turn an answer shows."""
    found = set()
    if victim.get("ticket") and answer.get("ticket") == victim["ticket"]:
        found.add("ticket")
    if victim.get("cart_id") and answer.get("cart_id") == victim["cart_id"]:
        found.add("cart")
    if victim.get("hold") and answer.get("hold") == victim["hold"]:
        found.add("hold")
    return found


def test_naming_a_guests_address_gets_none_of_their_ticket_cart_or_hold(api, backend, new_deal):
    deal = new_deal(units=1, starts_in=0)
    victim = api.post(f"/deals/{deal.pk}/queue", {"email": VICTIM, "cart_id": _cart(api)}).json()
    assert victim["state"] == "admitted" and victim["hold"]
    attack = api.post(
        f"/deals/{deal.pk}/queue", {"email": VICTIM}
    )  # no token, no cookie, no cart: just the address
    assert attack.status_code == 201
    assert _revealed(attack.json(), victim) == set() and attack.json()["cart_id"] is None
    # nor does a second try with the address in another case or with a fresh cart of the attacker's
    again = api.post(
        f"/deals/{deal.pk}/queue", {"email": VICTIM.upper(), "cart_id": _cart(api)}
    ).json()
    assert _revealed(again, victim) == set()
    # the victim, with the cart they hold, still has their turn
    mine = api.post(
        f"/deals/{deal.pk}/queue", {"email": VICTIM, "cart_id": victim["cart_id"]}
    ).json()
    assert (mine["ticket"], mine["state"], mine["cart_id"]) == (
        victim["ticket"],
        "admitted",
        victim["cart_id"],
    )


def test_joining_first_under_someone_elses_address_does_not_capture_their_later_join(
    api, backend, new_deal
):
    deal = new_deal(units=2, starts_in=0)
    squatter = api.post(f"/deals/{deal.pk}/queue", {"email": VICTIM, "cart_id": _cart(api)}).json()
    own_cart = _cart(api)
    victim = api.post(f"/deals/{deal.pk}/queue", {"email": VICTIM, "cart_id": own_cart}).json()
    assert victim["ticket"] != squatter["ticket"]
    assert (
        victim["state"] == "admitted" and victim["cart_id"] == own_cart
    )  # the held unit lands in the victim's own cart


def test_the_storefronts_join_form_does_not_hand_out_another_browsers_turn(backend, new_deal):
    deal = new_deal(units=1, starts_in=0)
    guest, stranger = Client(), Client()
    joined = guest.post(f"/deals/{deal.pk}/join/", {"quantity": "1", "email": VICTIM})
    assert joined.status_code == 302 and "/queue/" in joined["Location"]
    taken = stranger.post(f"/deals/{deal.pk}/join/", {"quantity": "1", "email": VICTIM})
    assert taken.status_code == 302 and taken["Location"] != joined["Location"]
    # the stranger's own page gives them no cart of the guest's: theirs holds nothing
    stranger.get(taken["Location"])
    guest.get(joined["Location"])
    assert "49,97" in guest.get("/cart/").content.decode()
    assert "49,97" not in stranger.get("/cart/").content.decode()


def test_the_wait_list_under_someone_elses_address_is_a_place_of_ones_own(api, backend, new_deal):
    deal = new_deal(units=1, starts_in=0)
    api.post(
        f"/deals/{deal.pk}/queue", {"email": "kaeufer@example.de", "cart_id": _cart(api)}
    )  # holds the only unit
    api.post(
        f"/deals/{deal.pk}/queue", {"email": "wartet@example.de", "cart_id": _cart(api)}
    )  # could get it back: the line is closed after
    victim = api.post(f"/deals/{deal.pk}/waitlist", {"email": VICTIM, "cart_id": _cart(api)})
    assert victim.status_code == 201, victim.json()
    attack = api.post(f"/deals/{deal.pk}/waitlist", {"email": VICTIM})
    assert attack.status_code == 201 and attack.json()["entry"] != victim.json()["entry"]


def test_a_guests_household_limit_still_counts_their_address(api, backend, new_deal):
    deal = new_deal(units=3, starts_in=0, limit=1)
    bought = api.post(f"/deals/{deal.pk}/queue", {"email": VICTIM, "cart_id": _cart(api)}).json()
    _checkout(bought["cart_id"], email=VICTIM)
    again = api.post(
        f"/deals/{deal.pk}/queue", {"email": VICTIM, "cart_id": _cart(api)}
    )  # another cart, the same address
    assert again.status_code == 409 and again.json()["code"] == "limit_per_customer"


def test_a_cart_of_someone_elses_account_is_no_identity(api, api_as, make_user, backend, new_deal):
    deal = new_deal(units=1, starts_in=0)
    owner = api_as(make_user(email="konto@example.de"))
    cart = owner.post("/carts", {}).json()["id"]
    refused = api.post(f"/deals/{deal.pk}/queue", {"email": VICTIM, "cart_id": cart})
    assert refused.status_code == 404 and refused.json()["code"] == "cart_not_found"
