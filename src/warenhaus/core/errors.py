"""Domain errors: every refusal has a stable machine-readable ``code`` and an HTTP status.

Services raise these; the API turns them into RFC 9457 problems and the pages into readable
messages. A caller never sees a 5xx for something it did wrong.
"""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "bad_request"
    title = "Bad request"
    #: retryable errors (timeouts, rate limits) are not remembered for an idempotency key
    retryable = False

    def __init__(
        self,
        detail: str = "",
        *,
        code: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
        **extra,
    ):
        super().__init__(detail or self.title)
        if retryable is not None:
            self.retryable = retryable
        self.detail = detail or self.title
        if code:
            self.code = code
        if status:
            self.status = status
        self.extra = extra
        self.after_rollback: list = []

    def run_after_rollback(self) -> None:
        """Run what must be written even though the refused unit of work rolled back (for
        example: the shopper has now been shown a changed price). Each layer that rolls back
        a transaction around the error calls this again after its rollback, so callbacks must
        be idempotent."""
        for fn in self.after_rollback:
            fn()

    def as_problem(self) -> dict:
        body = {
            "type": f"https://warenhaus.example/problems/{self.code}",
            "title": str(self.title),
            "status": self.status,
            "detail": str(self.detail),
            "code": self.code,
        }
        body.update(self.extra)
        return body


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"
    title = "Invalid input"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict with the current state"


class Unauthorized(DomainError):
    status = 401
    code = "not_authenticated"
    title = "Authentication required"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"
    retryable = True

    def __init__(self, detail: str = "", *, retry_after: int = 60, **kw):
        super().__init__(detail, **kw)
        self.retry_after = max(1, int(retry_after))
        self.extra["retry_after"] = self.retry_after


class PaymentFailed(DomainError):
    status = 402
    code = "payment_declined"
    title = "Payment was not authorised"


def is_capacity_error(exc) -> bool:
    """The database could not take the request now (no connection slot left, a lock or
    statement timeout, a deadlock it broke): the request was fine, the moment was not. The API
    and the pages answer it with 429 and ``Retry-After``, not a 5xx."""
    from django.db import OperationalError

    if not isinstance(exc, OperationalError):
        return False
    text = str(exc).lower()
    return any(
        s in text
        for s in (
            "too many clients",
            "remaining connection slots",
            "connection refused",
            "could not connect",
            "deadlock detected",
            "lock timeout",
            "canceling statement due to statement timeout",
            "database is locked",
            "server closed the connection",
        )
    )
