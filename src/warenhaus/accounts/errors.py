"""Why an account action is refused: one stable code per reason (listed in the README).

Rate limits answer with the shop-wide ``rate_limited`` (429 with ``Retry-After``)."""

from __future__ import annotations

from warenhaus.core.errors import Conflict, DomainError, ValidationFailed

#: code -> (HTTP status, English detail)
REASONS: dict[str, tuple[int, str]] = {
    "invalid_email": (422, "Please enter a valid e-mail address."),
    "email_taken": (409, "An account with this e-mail address already exists."),
    "weak_password": (422, "The password does not meet the password policy."),
    "invalid_credentials": (401, "E-mail address or password is wrong."),
    "invalid_login_link": (
        401,
        "This login link is unknown, has expired or has been used; please ask for a new one.",
    ),
}


def refusal(code: str, detail: str = "", **extra) -> DomainError:
    status, default = REASONS[code]
    cls = {422: ValidationFailed, 409: Conflict}.get(status, DomainError)
    return cls(detail or default, code=code, status=status, **extra)
