"""The waiting room's contract (:class:`warenhaus.deals.waiting_room.base.WaitingRoom`): every
case runs against the embedded database back end and against the Redis back end on the real
server, and both must behave alike (MISSION 3: a fair waiting room).

The races at the end use real threads released at once: for the database back end only on
PostgreSQL (SQLite serialises writers anyway), for Redis on any database."""

from __future__ import annotations

import time

import pytest

from tests.concurrency.support import run_together
from warenhaus.deals.waiting_room.base import PRE_QUEUE_SPAN, STATES

try:
    from tests.conftest import requires_postgres
except ImportError:
    from conftest import requires_postgres

pytestmark = pytest.mark.django_db

T0 = 1_800_000_000.0  # a moment after a deal's start (seconds since the epoch)


def join_late(room, deal, who, i=0, *, quantity=1):
    """Join after the start, ``i`` milliseconds after T0 (first come, first served)."""
    return room.join(deal, who, quantity, before_start=False, now=T0 + i / 1000)


def waiting_ids(room, deal, n=1000):
    return [t.id for t in room.first_waiting(deal, n)]


# -- joining and the order of the line ----------------------------------------------------------


def test_join_creates_a_waiting_ticket_with_its_place(room, deal):
    t, created = room.join(deal, "user:1", 2, before_start=False, now=T0 + 0.123456)

    assert created is True
    assert (t.deal_id, t.who, t.quantity, t.state, t.data) == (deal, "user:1", 2, "waiting", {})
    assert t.joined_at == T0 + 0.123456
    assert t.order_key == PRE_QUEUE_SPAN + int((T0 + 0.123456) * 1_000_000)
    assert room.position(deal, t) == 1
    assert room.get(deal, t.id) == t


def test_joining_twice_gives_the_same_ticket_whatever_its_state(room, deal):
    t, _ = join_late(room, deal, "user:1", quantity=2)
    again, created = room.join(deal, "user:1", 1, before_start=True, now=T0 + 5)

    assert created is False
    assert again == t  # same id, place, quantity
    assert room.counts(deal)["waiting"] == 1

    assert room.update(deal, t.id, state="admitted")
    later, created = join_late(room, deal, "user:1", 9)
    assert (later.id, later.state, created) == (t.id, "admitted", False)
    assert room.position(deal, later) is None
    assert room.first_waiting(deal, 10) == []


def test_ticket_of_finds_a_persons_ticket_whatever_its_state(room, deal, make_deal):
    t, _ = join_late(room, deal, "user:1", quantity=2)
    assert room.ticket_of(deal, "user:1") == t
    assert room.ticket_of(deal, "user:2") is None
    assert room.ticket_of(make_deal(), "user:1") is None  # another deal's room
    assert room.update(deal, t.id, state="sold_out")
    found = room.ticket_of(deal, "user:1")
    assert (found.id, found.state, found.quantity) == (t.id, "sold_out", 2)


def test_the_pre_queue_is_shuffled_and_goes_before_everyone_who_came_after_the_start(room, deal):
    early = [
        room.join(deal, f"early:{i}", 1, before_start=True, now=T0 - 1000 + i)[0].id
        for i in range(200)
    ]
    late = [join_late(room, deal, f"late:{i}", i)[0].id for i in range(20)]

    line = waiting_ids(room, deal)
    assert len(line) == 220
    assert set(line[:200]) == set(early)
    assert line[:200] != early, "the pre-queue kept the order of joining"
    assert line[200:] == late
    # not merely perturbed: the place in line does not follow the moment of joining
    # (Spearman's rho of a random permutation of 200 has a standard deviation of about 0.07)
    place = {tid: i for i, tid in enumerate(line)}
    n = len(early)
    rho = 1 - 6 * sum((place[tid] - i) ** 2 for i, tid in enumerate(early)) / (n * (n * n - 1))
    assert abs(rho) < 0.35
    for i, tid in enumerate(line):
        assert room.position(deal, room.get(deal, tid)) == i + 1


def test_those_who_come_after_the_start_are_served_first_come_first_served(room, deal):
    tickets = [join_late(room, deal, f"user:{i}", i)[0] for i in range(10)]

    assert waiting_ids(room, deal) == [t.id for t in tickets]
    assert [room.position(deal, t) for t in tickets] == list(range(1, 11))


def test_equal_places_are_ordered_by_ticket_id(room, deal):
    tickets = [join_late(room, deal, f"user:{i}")[0] for i in range(8)]  # the same microsecond
    assert len({t.order_key for t in tickets}) == 1

    by_id = sorted(t.id for t in tickets)
    assert waiting_ids(room, deal) == by_id
    assert [room.position(deal, t) for t in sorted(tickets, key=lambda t: t.id)] == list(
        range(1, 9)
    )


def test_positions_move_up_when_earlier_tickets_leave_the_line(room, deal):
    t = [join_late(room, deal, f"user:{i}", i)[0] for i in range(5)]

    assert room.update(deal, t[1].id, state="admitted")
    assert room.position(deal, t[1]) is None  # even with the stale ticket in hand
    assert room.position(deal, room.get(deal, t[1].id)) is None
    assert [room.position(deal, x) for x in (t[0], t[2], t[3], t[4])] == [1, 2, 3, 4]

    assert room.update(deal, t[0].id, state="left")
    assert [room.position(deal, x) for x in (t[2], t[3], t[4])] == [1, 2, 3]
    assert waiting_ids(room, deal) == [t[2].id, t[3].id, t[4].id]

    # back to waiting: back in its old place
    assert room.update(deal, t[1].id, state="waiting")
    assert waiting_ids(room, deal) == [t[1].id, t[2].id, t[3].id, t[4].id]
    assert room.position(deal, room.get(deal, t[1].id)) == 1


def test_first_waiting_gives_the_next_in_line_in_order(room, deal):
    t = [join_late(room, deal, f"user:{i}", i, quantity=i + 1)[0] for i in range(6)]
    room.update(deal, t[2].id, state="admitted")
    room.update(deal, t[0].id, state="waiting", data={"note": "still here"})

    assert room.first_waiting(deal, 0) == []
    first = room.first_waiting(deal, 3)
    assert [x.id for x in first] == [t[0].id, t[1].id, t[3].id]
    assert all(x.state == "waiting" for x in first)
    assert first[0].data == {"note": "still here"}
    assert [x.quantity for x in first] == [1, 2, 4]
    assert [x.id for x in room.first_waiting(deal, 100)] == [
        t[0].id,
        t[1].id,
        t[3].id,
        t[4].id,
        t[5].id,
    ]


# -- changing tickets ----------------------------------------------------------------------------


def test_update_with_only_from_is_a_compare_and_set(room, deal, make_deal):
    t, _ = join_late(room, deal, "user:1")

    assert room.update(deal, t.id, state="admitted", only_from="waiting") is True
    assert room.update(deal, t.id, state="admitted", only_from="waiting") is False
    assert room.update(deal, t.id, state="sold_out", only_from="waiting", data={"x": 1}) is False
    assert (room.get(deal, t.id).state, room.get(deal, t.id).data) == ("admitted", {})

    assert room.update(deal, t.id, state="expired", only_from="admitted") is True
    assert room.update(deal, t.id, state="left") is True  # without only_from: from anything
    assert room.get(deal, t.id).state == "left"

    assert room.update(deal, "no-such-ticket", state="admitted") is False
    assert room.update(make_deal(), t.id, state="admitted") is False  # another deal's
    assert room.get(deal, t.id).state == "left"


def test_update_merges_data_key_by_key(room, deal):
    t, _ = join_late(room, deal, "user:1")
    assert room.update(
        deal, t.id, state="waiting", data={"a": 1, "nested": {"x": [1, 2]}, "empty": []}
    )
    assert room.update(
        deal,
        t.id,
        state="admitted",
        data={"a": 2, "big": 2**60, "f": 0.1, "text": "Grüße", "none": None, "yes": True},
    )
    assert room.update(deal, t.id, state="admitted", data={})

    got = room.get(deal, t.id)
    assert got.state == "admitted"
    assert got.data == {
        "a": 2,
        "nested": {"x": [1, 2]},
        "empty": [],
        "big": 2**60,
        "f": 0.1,
        "text": "Grüße",
        "none": None,
        "yes": True,
    }
    assert room.first_waiting(deal, 5) == []


def test_update_many_changes_only_those_still_in_the_expected_state(room, deal):
    a, _ = join_late(room, deal, "user:1", 1)
    b, _ = join_late(room, deal, "user:2", 2)
    c, _ = join_late(room, deal, "user:3", 3)
    assert room.update(deal, b.id, state="left")

    n = room.update_many(
        deal,
        [(a.id, {"hold": 7}), (b.id, {"hold": 8}), (c.id, None), ("nope", None)],
        state="admitted",
        only_from="waiting",
    )

    assert n == 2
    assert (room.get(deal, a.id).state, room.get(deal, a.id).data) == ("admitted", {"hold": 7})
    assert (room.get(deal, b.id).state, room.get(deal, b.id).data) == ("left", {})
    assert room.get(deal, c.id).state == "admitted"
    assert room.counts(deal)["admitted"] == 2 and room.counts(deal)["waiting"] == 0
    assert room.update_many(deal, [], state="admitted") == 0


def test_the_position_estimate_agrees_with_the_position_when_nothing_changed_elsewhere(room, deal):
    tickets = [join_late(room, deal, f"user:{i}", i)[0] for i in range(5)]
    assert [room.position_estimate(deal, t) for t in tickets] == [1, 2, 3, 4, 5]
    room.update(deal, tickets[1].id, state="admitted")  # this process changed the line
    assert room.position_estimate(deal, tickets[3]) == room.position(deal, tickets[3]) == 3
    assert room.position_estimate(deal, room.get(deal, tickets[1].id)) is None


def test_the_admitters_heartbeat(room, deal, make_deal):
    assert room.last_beat(deal) is None
    room.beat(deal, T0)
    room.beat(deal, T0 + 1.5)
    assert room.last_beat(deal) == T0 + 1.5
    assert room.last_beat(make_deal()) is None


def test_counts_name_every_state(room, deal, make_deal):
    other = make_deal()
    assert room.counts(deal) == dict.fromkeys(STATES, 0)

    t = [join_late(room, deal, f"user:{i}", i)[0] for i in range(6)]
    join_late(room, other, "user:0")
    room.update(deal, t[0].id, state="admitted")
    room.update(deal, t[1].id, state="admitted")
    room.update(deal, t[2].id, state="sold_out")
    room.update(deal, t[3].id, state="expired")
    room.update(deal, t[3].id, state="left")
    room.update(deal, t[0].id, state="admitted")  # no change, counted once
    room.update(deal, t[1].id, state="waiting", only_from="sold_out")  # refused, not counted

    assert room.counts(deal) == {
        "waiting": 2,
        "admitted": 2,
        "sold_out": 1,
        "expired": 0,
        "left": 1,
    }
    assert room.counts(other) == {**dict.fromkeys(STATES, 0), "waiting": 1}


# -- the admitter's lease ------------------------------------------------------------------------


def test_the_lease_is_exclusive_until_released_by_its_owner(room, deal, make_deal):
    other = make_deal()
    assert room.acquire(deal, "a", 30) is True
    assert room.acquire(deal, "b", 30) is False
    assert room.acquire(deal, "a", 30) is False  # not re-entrant
    assert room.acquire(other, "b", 30) is True  # one lease per deal

    room.release(deal, "b")  # not the owner: nothing happens
    assert room.acquire(deal, "c", 30) is False

    room.release(deal, "a")
    assert room.acquire(deal, "c", 30) is True
    room.release(deal, "a")  # no longer the owner
    assert room.acquire(deal, "d", 30) is False


def test_the_lease_expires(room, deal):
    assert room.acquire(deal, "a", 0.2) is True
    assert room.acquire(deal, "b", 5) is False
    time.sleep(0.35)
    assert room.acquire(deal, "b", 5) is True
    room.release(deal, "a")  # expired and taken over: the old owner cannot free it
    assert room.acquire(deal, "c", 5) is False


# -- isolation, forgetting, instances --------------------------------------------------------------


def test_a_ticket_of_another_deal_is_not_found(room, deal, make_deal):
    other = make_deal()
    t, _ = join_late(room, deal, "user:1")

    assert room.get(other, t.id) is None
    assert room.position(other, t) is None
    assert room.get(deal, "no-such-ticket") is None
    assert room.get(deal, t.id + "x" * 100) is None
    # the same person in another deal: another ticket
    u, created = join_late(room, other, "user:1")
    assert created is True and u.id != t.id


def test_clear_forgets_the_room_of_one_deal(room, deal, make_deal):
    other = make_deal()
    t = [join_late(room, deal, f"user:{i}", i)[0] for i in range(3)]
    kept, _ = join_late(room, other, "user:0")
    room.update(deal, t[0].id, state="admitted")
    assert room.acquire(deal, "a", 30)

    room.clear(deal)

    assert room.get(deal, t[1].id) is None
    assert room.ticket_of(deal, "user:1") is None
    assert room.first_waiting(deal, 10) == []
    assert room.counts(deal) == dict.fromkeys(STATES, 0)
    assert room.acquire(deal, "b", 30) is True
    again, created = join_late(room, deal, "user:0")
    assert created is True and again.id != t[0].id and room.position(deal, again) == 1
    assert room.get(other, kept.id) == kept
    assert room.counts(other)["waiting"] == 1


def test_a_second_instance_sees_the_same_room(room, deal):
    from warenhaus.deals.waiting_room.db import DatabaseWaitingRoom
    from warenhaus.deals.waiting_room.redis import RedisWaitingRoom

    twin = (
        RedisWaitingRoom(room.url, prefix=room.prefix)
        if room.name == "redis"
        else DatabaseWaitingRoom()
    )
    try:
        t, _ = join_late(room, deal, "user:1")
        assert twin.join(deal, "user:1", 1, before_start=False, now=T0 + 1) == (t, False)
        assert twin.position(deal, t) == 1
        assert twin.update(deal, t.id, state="admitted", only_from="waiting")
        assert room.get(deal, t.id).state == "admitted"
        assert room.acquire(deal, "a", 30) and not twin.acquire(deal, "b", 30)
    finally:
        if room.name == "redis":
            twin.close()


# -- races: real threads at once ---------------------------------------------------------------------

PG_RACE = [
    pytest.mark.postgres,
    requires_postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("pg-concurrency"),
]
races = pytest.mark.parametrize(
    "backend", [pytest.param("db", marks=PG_RACE, id="db"), pytest.param("redis", id="redis")]
)


def outcomes(results):
    failed = [r for r in results if isinstance(r, tuple) and len(r) == 3 and r[0] == "exception"]
    assert not failed, failed[0][2]
    return results


@races
def test_race_thirty_joins_of_one_person_give_one_ticket(room, deal):
    results = outcomes(
        run_together(
            30, lambda i: room.join(deal, "user:same", 1, before_start=False, now=time.time())
        )
    )

    assert len({t.id for t, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert room.counts(deal)["waiting"] == 1


@races
def test_race_thirty_people_get_thirty_places(room, deal):
    results = outcomes(
        run_together(
            30, lambda i: room.join(deal, f"user:{i}", 1, before_start=False, now=time.time())
        )
    )

    tickets = [t for t, created in results if created]
    assert len({t.id for t in tickets}) == 30
    assert sorted(room.position(deal, t) for t in tickets) == list(range(1, 31))
    assert waiting_ids(room, deal) == [
        t.id for t in sorted(tickets, key=lambda t: (t.order_key, t.id))
    ]
    assert room.counts(deal)["waiting"] == 30


@races
def test_race_twenty_admitters_let_one_ticket_in_once(room, deal):
    t, _ = join_late(room, deal, "user:1")
    results = outcomes(
        run_together(
            20,
            lambda i: room.update(
                deal, t.id, state="admitted", only_from="waiting", data={"by": i}
            ),
        )
    )

    assert results.count(True) == 1 and results.count(False) == 19
    got = room.get(deal, t.id)
    assert got.state == "admitted" and got.data == {"by": results.index(True)}
    assert room.counts(deal) == {**dict.fromkeys(STATES, 0), "admitted": 1}


@races
def test_race_twenty_would_be_admitters_one_lease(room, deal):
    results = outcomes(run_together(20, lambda i: room.acquire(deal, f"worker-{i}", 30)))

    assert results.count(True) == 1 and results.count(False) == 19


def test_join_writes_the_tickets_data_with_it(room, deal):
    ticket, created = room.join(
        deal,
        "email:a@example.de",
        1,
        before_start=False,
        now=time.time(),
        data={"cart_id": "c1", "email": "a@example.de"},
    )
    assert created and ticket.data == {"cart_id": "c1", "email": "a@example.de"}
    assert room.get(deal, ticket.id).data == {"cart_id": "c1", "email": "a@example.de"}
    assert room.first_waiting(deal, 1)[0].data["cart_id"] == "c1"
    again, created = room.join(
        deal,
        "email:a@example.de",
        1,
        before_start=False,
        now=time.time(),
        data={"cart_id": "other"},
    )
    assert not created and again.data["cart_id"] == "c1"  # the first join's data stays


def test_a_place_read_with_the_ticket_is_its_place_then(room, deal):
    """Where a back end answers the place in line with a join or a read (``position_hint``:
    Redis, in the same script), it is the exact position at that moment; None otherwise."""
    tickets = [join_late(room, deal, f"user:{i}", i)[0] for i in range(4)]
    assert all(t.position_hint in (None, i + 1) for i, t in enumerate(tickets))
    room.update(deal, tickets[0].id, state="admitted")
    again, created = room.join(deal, "user:2", 1, before_start=False, now=T0 + 10)
    assert not created and again.position_hint in (None, 2)
    assert room.get(deal, tickets[3].id).position_hint in (None, 3)
    assert room.get(deal, tickets[0].id).position_hint is None  # admitted: no place in line
    if room.name == "redis":
        assert [room.get(deal, t.id).position_hint for t in tickets] == [None, 1, 2, 3]
