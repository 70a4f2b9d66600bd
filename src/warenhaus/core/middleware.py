"""Guards in front of the JSON API: content type, body size, and problem responses for the
errors Django itself produces (unknown path, wrong method), so that every answer under /api/
is JSON and a client never sees an HTML error page. And what caches may keep of any answer."""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.http import HttpResponseBadRequest

from .problems import problem

log = logging.getLogger("warenhaus.api")

BODY_METHODS = {"POST", "PUT", "PATCH"}

#: reads that are the same for everyone: the catalog, the deals as announced, the API's own documents
PUBLIC_READS = re.compile(
    r"/api/v1/(health|openapi\.json|docs|categories|products(/[^/]+)?|deals(/[0-9]+)?)/?"
)


def _has_nul(request) -> bool:
    if (
        "\x00" in request.path
        or "%00" in request.META.get("QUERY_STRING", "")
        or "\x00" in request.META.get("QUERY_STRING", "")
    ):
        return True
    if request.method in BODY_METHODS:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return False
        if 0 < length <= settings.API_MAX_BODY_BYTES:
            body = request.body  # read once; Django keeps it for the view
            return b"\x00" in body or b"\\u0000" in body
    return False


class ApiGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _has_nul(request):
            # PostgreSQL cannot store NUL characters; no legitimate client sends them.
            if request.path.startswith("/api/"):
                return problem(
                    400,
                    "invalid_characters",
                    "Invalid characters",
                    "The request contains a NUL character.",
                )
            return HttpResponseBadRequest("Bad request: the address contains a NUL character.")
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        refusal = self._refuse(request)
        if refusal is not None:
            return refusal
        response = self.get_response(request)
        ctype = response.get("Content-Type", "")
        if response.status_code == 404 and "json" not in ctype:
            return problem(404, "not_found", "Not found", f"No API endpoint at {request.path}.")
        if response.status_code == 405 and "json" not in ctype:
            refusal = problem(
                405,
                "method_not_allowed",
                "Method not allowed",
                f"{request.method} is not allowed on {request.path}.",
            )
            if response.has_header("Allow"):
                refusal["Allow"] = response["Allow"]  # RFC 9110: a 405 says what is allowed
            return refusal
        return response

    def _refuse(self, request):
        if request.method not in BODY_METHODS:
            return None
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return problem(400, "bad_request", "Bad request", "Content-Length is not a number.")
        if length > settings.API_MAX_BODY_BYTES:
            return problem(
                413,
                "payload_too_large",
                "Request body too large",
                f"The body may be at most {settings.API_MAX_BODY_BYTES} bytes.",
            )
        if length == 0:
            return None
        ctype = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if ctype != "application/json" and not ctype.endswith("+json"):
            return problem(
                415,
                "unsupported_media_type",
                "Unsupported media type",
                "Send the body as application/json.",
            )
        return None


class CacheControlMiddleware:
    """``Cache-Control: no-store`` on every answer that does not set its own: tokens, carts,
    orders, tickets, staff data and every page (each shows who is logged in and their cart) stay
    out of browser and proxy caches. Public reads (:data:`PUBLIC_READS`) get ``no-cache``: they
    may be kept, but are asked for again each time (stock and prices change). Static files never
    get here (WhiteNoise answers them, with their own lifetimes)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.process_response(request, self.get_response(request))

    def process_response(self, request, response):
        if not response.has_header("Cache-Control"):
            public = request.method in ("GET", "HEAD") and PUBLIC_READS.fullmatch(request.path)
            response["Cache-Control"] = "no-cache" if public else "no-store"
        return response
