"""``Idempotency-Key`` handling: the same key and body replay the first answer; a different body
with the same key is refused with 422 ``idempotency_key_reused``.

``run_idempotent`` runs the work and the insert of the key's record in one transaction, so the
key is remembered exactly when the work happened. Answers to the caller's mistakes (4xx domain
errors that are not retryable) are remembered too, in a transaction of their own after the
rollback, so a repeated submit gets the same answer and still changes nothing.

Work with a second step outside the transaction (a checkout that asks the card provider after
the stock is reserved) answers :data:`PENDING` with a marker; the key's record commits with the
first step, then ``then`` runs and its answer replaces the marker. Meanwhile a repeat gets 409
``idempotency_in_progress``. If the process dies in between, whoever settles the work later
writes the answer (:func:`finish_pending`) or lets the key be used again (:func:`forget_pending`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.db import IntegrityError, transaction

from .clock import now
from .errors import DomainError, ValidationFailed
from .models import IdempotencyRecord

MAX_KEY_LENGTH = 200
#: the status of a record whose work has a second step still running
PENDING = 0


class Replay(Exception):
    """Raised to hand back a remembered response."""

    def __init__(self, status_code: int, body: dict):
        self.status_code = status_code
        self.body = body


def request_hash(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def validate_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise ValidationFailed(
            "This request needs an Idempotency-Key header (any unique string, e.g. a UUID).",
            code="idempotency_key_missing",
            status=400,
        )
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed(
            f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters.",
            code="idempotency_key_invalid",
            status=400,
        )
    return key


def _replay_existing(scope: str, key: str, digest: str) -> None:
    rec = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
    if rec is None:
        return
    if rec.request_hash != digest:
        raise ValidationFailed(
            "This Idempotency-Key was already used with a different request body.",
            code="idempotency_key_reused",
            status=422,
        )
    if rec.status_code == PENDING:
        raise _in_progress()
    raise Replay(rec.status_code, rec.response)


def _in_progress() -> DomainError:
    return DomainError(
        "A request with this Idempotency-Key is in progress.",
        code="idempotency_in_progress",
        status=409,
    )


def _claim_key(scope: str, key: str, digest: str, marker: dict) -> int | None:
    """Insert the key's record, or return None if it exists already. One statement; on
    PostgreSQL a concurrent insert of the same key waits for the first transaction's outcome."""
    conn = transaction.get_connection()
    qn = conn.ops.quote_name
    table = qn(IdempotencyRecord._meta.db_table)
    with conn.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({qn('scope')}, {qn('key')}, {qn('request_hash')}, {qn('status_code')}, {qn('response')}, {qn('created_at')}) "  # noqa: S608  (names quoted by the backend; values bound)
            f"VALUES (%s, %s, %s, 0, %s, %s) ON CONFLICT ({qn('scope')}, {qn('key')}) DO NOTHING RETURNING {qn('id')}",
            [scope, key, digest, json.dumps(marker), conn.ops.adapt_datetimefield_value(now())],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def run_idempotent(
    *,
    scope: str,
    key: str,
    payload,
    work: Callable[[], tuple[int, dict]],
    then: Callable[[dict, Callable[[int, dict], None]], tuple[int, dict]] | None = None,
    pending: dict | None = None,
) -> tuple[int, dict]:
    """Run ``work`` (returning ``(status, body)``) at most once per ``(scope, key)``.

    With ``then``, the record is written with ``pending`` as its marker; if ``work`` returns
    ``(PENDING, marker)``, ``then(marker, answer)`` runs after the commit, outside any
    transaction, and calls ``answer(status, body)`` inside the transaction that finishes the
    work, so the key's answer commits with it.

    Raises :class:`Replay` when an earlier answer is returned, or the DomainError of ``work``
    or ``then``.
    """
    digest = request_hash(payload)
    try:
        with transaction.atomic():
            record_id = _claim_key(scope, key, digest, pending or {})
            if record_id is None:
                raise _Duplicate()
            status_code, body = work()
            if status_code != PENDING:
                IdempotencyRecord.objects.filter(pk=record_id).update(
                    status_code=status_code, response=body
                )
    except _Duplicate:
        _replay_existing(scope, key, digest)
        raise _in_progress() from None
    except DomainError as err:
        err.run_after_rollback()
        if _remembered(err):
            _remember(scope, key, digest, err)
        raise
    if status_code != PENDING or then is None:
        return status_code, body

    def answer(status: int, response: dict) -> None:
        IdempotencyRecord.objects.filter(pk=record_id, status_code=PENDING).update(
            status_code=status, response=response
        )

    try:
        return then(body, answer)
    except DomainError as err:
        if _remembered(err):
            finish_pending([record_id], status_code=err.status, body=err.as_problem())
        else:
            forget_pending([record_id])  # nothing happened for good: the key may try again
        raise


def _remembered(err: DomainError) -> bool:
    return not err.retryable and 400 <= err.status < 500


def _remember(scope: str, key: str, digest: str, err: DomainError) -> None:
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.create(
                scope=scope,
                key=key,
                request_hash=digest,
                status_code=err.status,
                response=err.as_problem(),
            )
    except IntegrityError:
        pass


def pending_records(**marker) -> list[int]:
    """The ids of records still waiting whose marker holds ``marker`` (e.g. ``order=number``)."""
    return list(
        IdempotencyRecord.objects.filter(
            status_code=PENDING, **{f"response__{k}": v for k, v in marker.items()}
        ).values_list("pk", flat=True)
    )


def finish_pending(record_ids: list[int], *, status_code: int, body: dict) -> None:
    """Write the answer of work whose second step was finished by someone else."""
    IdempotencyRecord.objects.filter(pk__in=record_ids, status_code=PENDING).update(
        status_code=status_code, response=body
    )


def forget_pending(record_ids: list[int]) -> None:
    """Let the keys of work that was undone be used again."""
    IdempotencyRecord.objects.filter(pk__in=record_ids, status_code=PENDING).delete()


class _Duplicate(Exception):
    pass
