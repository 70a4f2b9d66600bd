"""RFC 9457 problem responses."""

from __future__ import annotations

from django.http import JsonResponse

from .errors import DomainError, RateLimited

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_response(err: DomainError) -> JsonResponse:
    resp = JsonResponse(err.as_problem(), status=err.status, content_type=PROBLEM_CONTENT_TYPE)
    if isinstance(err, RateLimited):
        resp["Retry-After"] = str(err.retry_after)
    return resp


def problem(status: int, code: str, title: str, detail: str = "", **extra) -> JsonResponse:
    """A problem for errors that arise outside the services (framework, middleware); the body
    has the one shape :meth:`DomainError.as_problem` gives."""
    err = DomainError(detail or title, code=code, status=status, **extra)
    err.title = title
    return problem_response(err)
