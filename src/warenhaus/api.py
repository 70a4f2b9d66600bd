"""The public JSON API, v1 (contract: shared/API.md). One NinjaAPI; each domain app has its own
router in ``<app>/api.py``. Errors are RFC 9457 problems with a stable ``code``; the OpenAPI
document names every answer's shape, the problems each route may answer and who may call it."""

from __future__ import annotations

import logging

from django.http import Http404, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.docs import Swagger

from warenhaus.core.errors import DomainError, is_capacity_error
from warenhaus.core.idempotency import MAX_KEY_LENGTH, Replay
from warenhaus.core.problems import PROBLEM_CONTENT_TYPE, problem, problem_response
from warenhaus.core.schemas import Out, Problem

log = logging.getLogger("warenhaus.api")

#: problems any route may answer: malformed input (400), input the schema refuses (422), load
#: and abuse limits (429); with a body also 413 (too large) and 415 (not JSON)
EVERY_ROUTE = ("400", "422", "429")
WITH_BODY = ("413", "415")
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _finish(doc: dict) -> dict:
    """What the routers' declarations leave out of the document: problems are
    ``application/problem+json`` and on every route, the bearer scheme behind "Authorize",
    and the ``Idempotency-Key`` header as the server requires it."""
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.setdefault(
        "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "a token from POST /api/v1/auth/token",
        }
    }
    for operations in doc.get("paths", {}).values():
        for method, op in operations.items():
            responses = op["responses"] = {str(k): v for k, v in op.get("responses", {}).items()}
            extra = EVERY_ROUTE + (WITH_BODY if method in ("post", "put", "patch") else ())
            for status in extra:
                responses.setdefault(status, {"description": "A problem"})
            for status, answer in responses.items():
                if status.isdigit() and int(status) >= 400:
                    answer["description"] = answer.get("description") or "A problem"
                    answer["content"] = {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_REF}}
            for param in op.get("parameters", []):
                if param["in"] == "header" and param["name"] == "Idempotency-Key":
                    # missing or blank: 400 idempotency_key_missing (the server's own check)
                    param["required"] = True
                    param["schema"] = {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_KEY_LENGTH,
                        "pattern": r"\S",
                        "description": "any unique string, e.g. a UUID",
                    }
                    param["description"] = (
                        "the same key with the same body returns the first answer"
                    )
    return doc


class WarenhausAPI(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        doc = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        return _finish(doc)


api = WarenhausAPI(
    title="Warenhaus API",
    version="1",
    description=(
        'The public JSON API of Warenhaus. Money is `{"amount": "12.50", "currency": '
        '"EUR"}` in and out. Errors are application/problem+json (RFC 9457) with a stable '
        "`code`. Routes with a lock need `Authorization: Bearer <token>` (POST /auth/token)."
    ),
    urls_namespace="api-v1",
    docs_url="/docs",
    # the Swagger UI files ninja ships, served as static files (no CDN)
    docs=Swagger(settings={"persistAuthorization": False}),
)


class HealthOut(Out):
    status: str


@api.exception_handler(DomainError)
def _domain_error(request, exc: DomainError):
    return problem_response(exc)


@api.exception_handler(Replay)
def _replay(request, exc: Replay):
    ctype = "application/problem+json" if exc.status_code >= 400 else "application/json"
    resp = JsonResponse(exc.body, status=exc.status_code, content_type=ctype)
    resp["Idempotent-Replayed"] = "true"
    return resp


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    errors = [
        {
            "loc": [str(p) for p in e.get("loc", [])],
            "message": e.get("msg", ""),
            "type": e.get("type", ""),
        }
        for e in exc.errors
    ]
    first = errors[0] if errors else {"loc": [], "message": ""}
    where = ".".join(p for p in first["loc"] if p not in {"body", "payload"})
    # a bound that names its own problem (apiutil.whole_number), e.g. invalid_quantity
    status = (exc.errors[0].get("ctx") or {}).get("problem_status") if exc.errors else None
    if status:
        return problem(status, first["type"], "Invalid input", first["message"], errors=errors)
    return problem(
        422,
        "validation_error",
        "Invalid input",
        f"{where}: {first['message']}" if where else first["message"],
        errors=errors,
    )


@api.exception_handler(AuthenticationError)
def _auth_error(request, exc):
    return problem(
        401,
        "not_authenticated",
        "Authentication required",
        "Send a valid token as 'Authorization: Bearer <token>'.",
    )


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    if exc.status_code == 400 and "parse" in str(exc).lower():
        return problem(
            400, "malformed_json", "Malformed JSON", "The request body is not valid JSON."
        )
    return problem(exc.status_code, "http_error", str(exc), str(exc))


@api.exception_handler(RecursionError)
def _too_deep(request, exc):
    # json.loads gives up on a body nested thousands of levels deep (a few kilobytes of "[")
    log.warning("request body nested too deeply in %s %s", request.method, request.path)
    return problem(
        400, "malformed_json", "Malformed JSON", "The request body is nested too deeply."
    )


@api.exception_handler(Http404)
def _not_found(request, exc):
    return problem(404, "not_found", "Not found", str(exc) or "Not found")


@api.exception_handler(Exception)
def _bug(request, exc):
    if is_capacity_error(exc):
        # A rush the database could not take: say when to come back (a retry with the same
        # Idempotency-Key is safe), instead of a 5xx.
        log.warning(
            "database at capacity in %s %s: %s",
            request.method,
            request.path,
            str(exc).splitlines()[0][:200],
        )
        resp = problem(
            429,
            "overloaded",
            "Too busy right now",
            "The shop is very busy at this moment; please try again in a few seconds.",
        )
        resp["Retry-After"] = "2"
        return resp
    log.exception("unhandled error in %s %s", request.method, request.path)
    return problem(
        500,
        "internal_error",
        "Internal error",
        "Something went wrong on our side; it has been logged.",
    )


@api.get(
    "/health",
    response={200: HealthOut},
    tags=["meta"],
    summary="Liveness: answers without touching the database",
)
def health(request):
    return {"status": "ok"}


from warenhaus.accounts.api import router as accounts_router  # noqa: E402
from warenhaus.catalog.api import router as catalog_router  # noqa: E402
from warenhaus.checkout.api import router as checkout_router  # noqa: E402
from warenhaus.deals.api import router as deals_router  # noqa: E402
from warenhaus.orders.api import router as orders_router  # noqa: E402
from warenhaus.promotions.api import router as promotions_router  # noqa: E402
from warenhaus.remediation.api import router as remediation_router  # noqa: E402

api.add_router("", accounts_router)
api.add_router("", catalog_router)
api.add_router("", checkout_router)
api.add_router("", orders_router)
api.add_router("", promotions_router)
api.add_router("", remediation_router)
api.add_router("", deals_router)
