"""The deals' hand-written SQL, each statement named, with why the ORM is not used for it.

Every statement here is on a hot path of a rush, where the ORM's query building cost more than
the query itself (measured in docs/benchmarks.md, "Flash deals"), or says something the ORM
cannot (a conditional upsert). Table and column names come from the models and are quoted; every
value is bound, never formatted into the text (hence the ``noqa: S608`` on the f-strings).
PostgreSQL and SQLite both speak every statement (``ON CONFLICT``, row values, ``RETURNING``).
"""

from __future__ import annotations

from django.db import connection, transaction

from .models import HouseholdUsage, Ticket, WaitlistEntry, WaitlistStatus
from .waiting_room.base import TicketState

#: the wait-list columns a poll needs, in the model's field order (``from_db`` defers the rest)
ENTRY_FIELDS = ("id", "deal_id", "who", "quantity", "status", "token", "order_key")


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


def _marks(n: int) -> str:
    return ", ".join(["%s"] * n)


def _fetch_one(sql: str, params: list) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def entry_from_row(row: tuple) -> WaitlistEntry:
    """A wait-list entry from a row of ``ENTRY_FIELDS``."""
    return WaitlistEntry.from_db(connection.alias, list(ENTRY_FIELDS), row)


# --- household usage --------------------------------------------------------------------------


def least_usage_left(deal_id: int, keys: list[str]) -> int | None:
    """The fewest units any of the household ``keys`` may still take (None: none has usage).

    By hand: a join's household check was a fifth of the rush's server time as an ORM aggregate
    (docs/benchmarks.md, "Session 5: the rush profiled")."""
    (left,) = _fetch_one(
        f"SELECT MIN({_qn('max_units')} - {_qn('units')}) "  # noqa: S608 - names from the model, values bound
        f"FROM {_qn(HouseholdUsage._meta.db_table)} "
        f"WHERE {_qn('deal_id')} = %s AND {_qn('key')} IN ({_marks(len(keys))})",
        [deal_id, *keys],
    )
    return left


def count_household(deal_id: int, keys: list[str], quantity: int, limit: int) -> set[str]:
    """Add ``quantity`` to each household key's usage where the limit allows; the keys counted.

    By hand: the ORM has no conditional upsert; one statement per checkout instead of a
    get_or_create and an update per key (docs/benchmarks.md, "Checkout under load")."""
    table = _qn(HouseholdUsage._meta.db_table)
    deal, key, units, max_units = (_qn(c) for c in ("deal_id", "key", "units", "max_units"))
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(keys))
    sql = (
        f"INSERT INTO {table} ({deal}, {key}, {units}, {max_units}) VALUES {rows} "  # noqa: S608 - names from the model, values bound
        f"ON CONFLICT ({deal}, {key}) DO UPDATE SET {units} = {table}.{units} + excluded.{units} "
        f"WHERE {table}.{units} + excluded.{units} <= {table}.{max_units} RETURNING {key}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [v for k in keys for v in (deal_id, k, quantity, limit)])
        return {row[0] for row in cursor.fetchall()}


# --- the wait list ----------------------------------------------------------------------------


def waitlist_entry_row(deal_id: int, who: str) -> tuple | None:
    """``who``'s wait-list entry as a row of ``ENTRY_FIELDS``, or None.

    By hand: everyone told "sold out" polls it; the ORM's ``.first()`` was an eighth of the
    rush's server time (docs/benchmarks.md, "Session 5: the rush profiled")."""
    return _fetch_one(
        f"SELECT {', '.join(map(_qn, ENTRY_FIELDS))} "  # noqa: S608 - names from the model, values bound
        f"FROM {_qn(WaitlistEntry._meta.db_table)} "
        f"WHERE {_qn('deal_id')} = %s AND {_qn('who')} = %s",
        [deal_id, who],
    )


def _ahead_since(table: str, newest: int | None) -> tuple[str, list]:
    """``AND`` clause: only entries that joined after a snapshot whose newest id is ``newest``."""
    if newest is None:
        return "", []
    return f" AND {table}{_qn('id')} > %s", [newest]


def newcomers_ahead(deal_id: int, newest: int | None, me: tuple[int, int]) -> int:
    """How many wait with places ``(order_key, id)`` before ``me`` among the entries newer than
    the snapshot's ``newest`` id (None: all).

    By hand: an index range counted for every sold-out poll; the ORM's ``.count()`` cost the
    rush more than the count (docs/benchmarks.md, "Session 5: the rush profiled")."""
    since, extra = _ahead_since("", newest)
    (n,) = _fetch_one(
        f"SELECT COUNT(*) FROM {_qn(WaitlistEntry._meta.db_table)} "  # noqa: S608 - names from the model, values bound
        f"WHERE {_qn('deal_id')} = %s AND {_qn('status')} = %s "
        f"AND ({_qn('order_key')}, {_qn('id')}) < (%s, %s){since}",
        [deal_id, WaitlistStatus.WAITING.value, *me, *extra],
    )
    return n


def insert_waitlist_entry(columns: tuple, values: list) -> tuple | None:
    """A new wait-list entry (row of ``ENTRY_FIELDS``), or None if ``who`` has one already.

    By hand: ``INSERT ... ON CONFLICT DO NOTHING RETURNING``; the ORM's insert-then-get was a
    fifth of the rush's server time (docs/benchmarks.md, "Session 6")."""
    return _fetch_one(
        f"INSERT INTO {_qn(WaitlistEntry._meta.db_table)} ({', '.join(map(_qn, columns))}) "  # noqa: S608 - names from the model, values bound
        f"VALUES ({_marks(len(columns))}) ON CONFLICT ({_qn('deal_id')}, {_qn('who')}) DO NOTHING "
        f"RETURNING {', '.join(map(_qn, ENTRY_FIELDS))}",
        values,
    )


def insert_waitlist_place(
    columns: tuple,
    values: list,
    *,
    deal_id: int,
    household: list[str] | None,
    quantity: int,
    newest: int | None,
) -> tuple | None:
    """A new wait-list entry unless ``who`` has one or (``household``: its keys) the household
    may take fewer than ``quantity`` more units: the entry's row of ``ENTRY_FIELDS`` and, last,
    how many newer than the snapshot's ``newest`` id wait ahead of it; None if not made.

    By hand: the usage check, the insert and the count in one statement, for what every
    newcomer after the last unit asks (docs/benchmarks.md, "Session 7")."""
    table = _qn(WaitlistEntry._meta.db_table)
    sql = f"INSERT INTO {table} ({', '.join(map(_qn, columns))}) SELECT {_marks(len(columns))} "  # noqa: S608 - names from the model, values bound
    params = list(values)
    if household:
        usage = _qn(HouseholdUsage._meta.db_table)
        sql += (
            f"WHERE NOT EXISTS (SELECT 1 FROM {usage} AS u WHERE u.{_qn('deal_id')} = %s "  # noqa: S608 - names from the model, values bound
            f"AND u.{_qn('key')} IN ({_marks(len(household))}) "
            f"AND u.{_qn('max_units')} - u.{_qn('units')} < %s) "
        )
        params += [deal_id, *household, quantity]
    else:
        # SQLite reads ON CONFLICT after an INSERT ... SELECT only behind a WHERE
        sql += "WHERE 1 = 1 "
    mine = f"({table}.{_qn('order_key')}, {table}.{_qn('id')})"
    theirs = f"(ahead.{_qn('order_key')}, ahead.{_qn('id')})"
    since, extra = _ahead_since("ahead.", newest)
    ahead = (
        f"SELECT COUNT(*) FROM {table} AS ahead "  # noqa: S608 - names from the model, values bound
        f"WHERE ahead.{_qn('deal_id')} = {table}.{_qn('deal_id')} "
        f"AND ahead.{_qn('status')} = %s AND {theirs} < {mine}{since}"
    )
    params += [WaitlistStatus.WAITING.value, *extra]
    sql += (
        f"ON CONFLICT ({_qn('deal_id')}, {_qn('who')}) DO NOTHING "
        f"RETURNING {', '.join(f'{table}.{_qn(f)}' for f in ENTRY_FIELDS)}, ({ahead})"
    )
    return _fetch_one(sql, params)


# --- the embedded waiting room's tickets ------------------------------------------------------

#: the ticket's columns in the order :func:`insert_ticket` takes its values
TICKET_FIELDS = ("id", "deal", "who", "quantity", "state", "order_key", "joined_at", "data")


def insert_ticket(values: list) -> bool:
    """A new ticket (values in the order of ``TICKET_FIELDS``), unless ``who`` has one for the
    deal: whether it was made. The unique (deal, who) decides who was first, no error to recover.

    By hand, and outside a transaction on PostgreSQL as one simple query with
    ``synchronous_commit`` off: a join is one round trip (docs/benchmarks.md, "The fast lane,
    session 4"; the insert itself: "Results, session 3")."""
    columns = [Ticket._meta.get_field(n).column for n in TICKET_FIELDS]
    sql = (
        f"INSERT INTO {_qn(Ticket._meta.db_table)} ({', '.join(map(_qn, columns))}) "  # noqa: S608 - names from the model, values bound
        f"VALUES ({_marks(len(columns))}) ON CONFLICT ({_qn('deal_id')}, {_qn('who')}) DO NOTHING"
    )
    if (
        connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and connection.settings_dict["OPTIONS"].get("server_side_binding") is not True
    ):
        # a place in a waiting room is not worth a disk flush per person: PostgreSQL acknowledges
        # it before its WAL reaches the disk (a crash may lose the ticket; its holder joins again).
        # One simple query is one transaction, so the setting ends with it
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF; " + sql, values)
            cursor.nextset()
            return cursor.rowcount == 1
    # SQLite, or inside the caller's transaction (which decides how it commits)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, values)
        return cursor.rowcount == 1


def ticket_row(deal_id: int, ticket_id: str) -> tuple | None:
    """A ticket's ``(who, quantity, state, order_key, joined_at, data)``, or None.

    By hand: what every poll does, and the ORM's compilation cost twice the query
    (docs/benchmarks.md, "Results, session 3")."""
    return _fetch_one(
        "SELECT who, quantity, state, order_key, joined_at, data "  # noqa: S608 - names from the model, values bound
        f"FROM {_qn(Ticket._meta.db_table)} WHERE id = %s AND deal_id = %s",
        [ticket_id, deal_id],
    )


def waiting_between(deal_id: int, after: tuple | None, me: tuple) -> int:
    """How many tickets wait with places ``(order_key, id)`` above ``after`` (None: from the
    start) and below ``me``; the plain bounds make it a range of the index.

    By hand: a poll's count of those who joined since the snapshot of the line; the ORM's
    compilation cost more than the count (docs/benchmarks.md, "Results, session 3")."""
    sql = (
        f"SELECT COUNT(*) FROM {_qn(Ticket._meta.db_table)} "  # noqa: S608 - names from the model, values bound
        "WHERE deal_id = %s AND state = %s AND order_key <= %s AND (order_key, id) < (%s, %s)"
    )
    args = [deal_id, TicketState.WAITING.value, me[0], me[0], me[1]]
    if after is not None:
        sql += " AND order_key >= %s AND (order_key, id) > (%s, %s)"
        args += [after[0], after[0], after[1]]
    (n,) = _fetch_one(sql, args)
    return n
