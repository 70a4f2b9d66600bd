"""``Idempotency-Key`` handling: the same key and body replay the first answer; a different body
with the same key is refused with 422 ``idempotency_key_reused``.

``run_idempotent`` runs the work and the insert of the key's record in one transaction, so the
key is remembered exactly when the work happened. Answers to the caller's mistakes (4xx domain
errors that are not retryable) are remembered too, in a transaction of their own after the
rollback, so a repeated submit gets the same answer and still changes nothing.
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
    raise Replay(rec.status_code, rec.response)


def _claim_key(scope: str, key: str, digest: str) -> int | None:
    """Insert the key's record, or return None if it exists already. One statement; on
    PostgreSQL a concurrent insert of the same key waits for the first transaction's outcome."""
    conn = transaction.get_connection()
    qn = conn.ops.quote_name
    table = qn(IdempotencyRecord._meta.db_table)
    with conn.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({qn('scope')}, {qn('key')}, {qn('request_hash')}, {qn('status_code')}, {qn('response')}, {qn('created_at')}) "  # noqa: S608  (names quoted by the backend; values bound)
            f"VALUES (%s, %s, %s, 0, %s, %s) ON CONFLICT ({qn('scope')}, {qn('key')}) DO NOTHING RETURNING {qn('id')}",
            [scope, key, digest, "{}", conn.ops.adapt_datetimefield_value(now())],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def run_idempotent(
    *, scope: str, key: str, payload, work: Callable[[], tuple[int, dict]]
) -> tuple[int, dict]:
    """Run ``work`` (returning ``(status, body)``) at most once per ``(scope, key)``.

    Raises :class:`Replay` when an earlier answer is returned, or the DomainError of ``work``.
    """
    digest = request_hash(payload)
    try:
        with transaction.atomic():
            record_id = _claim_key(scope, key, digest)
            if record_id is None:
                raise _Duplicate()
            status_code, body = work()
            IdempotencyRecord.objects.filter(pk=record_id).update(
                status_code=status_code, response=body
            )
            return status_code, body
    except _Duplicate:
        _replay_existing(scope, key, digest)
        raise DomainError(
            "A request with this Idempotency-Key is in progress.",
            code="idempotency_in_progress",
            status=409,
        ) from None
    except DomainError as err:
        err.run_after_rollback()
        if not err.retryable and 400 <= err.status < 500:
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
        raise


class _Duplicate(Exception):
    pass
