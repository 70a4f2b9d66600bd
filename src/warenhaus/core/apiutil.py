"""Helpers the domain routers share: who is calling, capability checks, bounded whole numbers,
cursor pagination."""

from __future__ import annotations

import base64

from django.db.models import QuerySet
from ninja import Router

from warenhaus.core.errors import DomainError, Forbidden, Unauthorized, ValidationFailed
from warenhaus.core.parsing import whole_number  # defined there; routers import it from here

MAX_LIMIT = 100

#: the OpenAPI security of a route that needs a token (the docs' "Authorize" sends it)
AUTH = {"security": [{"bearer": []}]}
#: the OpenAPI security of a route that serves anonymous callers too and more with a token
OPTIONAL_AUTH = {"security": [{"bearer": []}, {}]}


class ApiRouter(Router):
    """A domain's router. Answers are checked against their schemas and keep exactly the keys
    the handler gave (a field the handler left out stays out; aliases such as ``from`` are the
    names on the wire)."""

    def add_api_operation(self, path, methods, view_func, **kw):
        kw["by_alias"] = True if kw.get("by_alias") is None else kw["by_alias"]
        kw["exclude_unset"] = True if kw.get("exclude_unset") is None else kw["exclude_unset"]
        return super().add_api_operation(path, methods, view_func, **kw)


def caller(request):
    """The authenticated user, an anonymous caller (None), or 401 for a bad token."""
    if hasattr(request, "_wh_caller"):
        return request._wh_caller
    header = request.headers.get("Authorization", "")
    user = None
    if header:
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise DomainError(
                "Use 'Authorization: Bearer <token>'.", code="invalid_token", status=401
            )
        from warenhaus.core.callers import user_for_token

        user = user_for_token(raw.strip())
        if user is None:
            raise DomainError(
                "The token is unknown or expired; get a new one from POST /api/v1/auth/token.",
                code="invalid_token",
                status=401,
            )
    request._wh_caller = user
    return user


def require_user(request):
    user = caller(request)
    if user is None:
        raise Unauthorized(
            "Log in first: POST /api/v1/auth/token, then send 'Authorization: Bearer <token>'."
        )
    return user


def require(request, capability: str):
    from warenhaus.core.callers import can

    user = require_user(request)
    if not can(user, capability):
        raise Forbidden(f"Your roles do not allow this ({capability}).", code="forbidden")
    return user


def client_ip(request) -> str:
    """The client's address. Behind ``TRUSTED_PROXY_COUNT`` proxies (a load balancer, a TLS
    terminator) each of which appends to X-Forwarded-For, it is the entry that the outermost
    trusted proxy added; anything left of it is the client's own claim and is not trusted."""
    from django.conf import settings

    proxies = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    remote = request.META.get("REMOTE_ADDR", "")
    if proxies <= 0:
        return remote
    chain = [
        p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()
    ]
    if len(chain) >= proxies:
        return chain[-proxies][:64]
    return remote


#: the ``limit`` of every list: out of range, the documented ``invalid_limit`` (400)
Limit = whole_number(1, MAX_LIMIT, code="invalid_limit", status=400, strict=False)


def _decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
    except Exception:
        raise ValidationFailed(
            "The cursor is not one this API gave out.", code="invalid_cursor", status=400
        ) from None


def _encode_cursor(value: int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def paginate(
    qs: QuerySet, *, limit: int | None, cursor: str | None, render, descending: bool = False
) -> dict:
    """Keyset pagination on the primary key: stable under inserts, cheap at any depth."""
    limit = 20 if limit is None else limit
    if limit < 1 or limit > MAX_LIMIT:
        raise ValidationFailed(
            f"limit must be between 1 and {MAX_LIMIT}.", code="invalid_limit", status=400
        )
    after = _decode_cursor(cursor)
    qs = qs.order_by("-pk" if descending else "pk")
    if after is not None:
        qs = qs.filter(pk__lt=after) if descending else qs.filter(pk__gt=after)
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [render(r) for r in rows],
        "next_cursor": _encode_cursor(rows[-1].pk) if more and rows else None,
    }
