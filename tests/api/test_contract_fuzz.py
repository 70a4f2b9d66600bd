"""The OpenAPI document is a contract a generated client can trust: schemathesis generates
requests from ``/api/v1/openapi.json`` (valid ones and ones that break the schema) and sends
them in-process to the WSGI app, as a staff member with every role.

Checked for every operation: no 5xx, no status the document does not list, answers in the
documented shape and media type, schema-valid requests accepted and invalid ones refused.
Answers that depend on the data (an id that does not exist: 404; a state that forbids it: 409;
a reference to something unknown: the 422 codes in ``STATE_DEPENDENT``) count as accepted, as
the document declares them. Deterministic (a fixed seed, few examples), so CI does not flake.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import ignored_auth

from warenhaus.accounts.roles import ROLES

#: problem codes of schema-valid requests that depend on what exists (a reference to an
#: unknown category, SKU or voucher code, a time window, a password a person would guess)
STATE_DEPENDENT = {
    "unknown_category",
    "sku_not_found",
    "unknown_voucher_code",
    "campaign_not_found",
    "invalid_selector",
    "invalid_actions",
    "weak_password",
    "invalid_email",
    "invalid_cursor",
    "invalid_payment_method",
    "country_not_served",
    "invalid_shipping_method",
    "invalid_address",
    "idempotency_key_reused",
    "product_not_found",
}

#: rules between fields of one body that this document's schemas do not state (each is in the
#: field's description): (operation, problem code, the start of its detail)
CROSS_FIELD = {
    ("POST /api/v1/campaigns", "validation_error", "A percent discount is at most 100."),
    ("PATCH /api/v1/campaigns/{campaign_id}", "validation_error", "A percent discount is at"),
    ("POST /api/v1/campaigns", "invalid_code", ""),
    ("POST /api/v1/campaigns", "validation_error", "public_code belongs to code_mode"),
    ("POST /api/v1/campaigns", "validation_error", "valid_until must be after valid_from"),
    ("PATCH /api/v1/campaigns/{campaign_id}", "validation_error", "valid_until must be after"),
    ("POST /api/v1/deals", "validation_error", "ends_at must be after starts_at"),
    ("POST /api/v1/campaigns/{campaign_id}/codes/import", "validation_error", "codes must be"),
    ("POST /api/v1/products", "invalid_slug", ""),
}

CONFIG = """
[generation]
deterministic = true
allow-x00 = false
max-examples = 8
codec = "utf-8"

[checks]
positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "429"]
negative_data_rejection.expected-statuses = ["400", "401", "403", "404", "409", "413", "415", "422", "429"]
"""


HEADERS: dict[str, str] = {}


def _summary(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    titles = [line[2:] for line in lines if line.startswith("- ")]
    return "; ".join(titles) or (lines[0] if lines else type(err).__name__)


def _answer(response) -> str:
    try:
        body = response.json()
        return f"{response.status_code} {body.get('code')} {body.get('detail', '')[:120]!r}"
    except ValueError:
        return str(response.status_code)


def _request(case) -> str:
    return f"{case.method} {case.formatted_path} query={case.query} body={case.body!r}"[:200]


def _failures(op, mode: GenerationMode) -> list[str]:
    found: list[str] = []

    @given(case=op.as_strategy(mode))
    @settings(
        max_examples=8,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case):
        response = case.call(headers=HEADERS)
        if (
            response.status_code in (400, 422)
            and case.meta
            and case.meta.generation.mode.is_positive
        ):
            body = response.json()
            code, detail = body.get("code"), body.get("detail", "")
            if code in STATE_DEPENDENT or any(
                (op.label, code) == (where, c) and detail.startswith(start)
                for where, c, start in CROSS_FIELD
            ):
                return
        try:
            # every request carries a real staff token; who may do what is the authorization
            # matrix's business (tests/api/test_authorization_matrix.py)
            case.validate_response(response, excluded_checks=[ignored_auth])
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as err:  # noqa: BLE001  collected, reported together below
            found.append(f"{op.label}: {_summary(err)} <- {_answer(response)} {_request(case)}")

    try:
        run()
    except Unsatisfiable:  # nothing to break: an operation without inputs has no invalid request
        pass
    return found


@pytest.fixture
def _one_connection(db):
    """As Django's test client does: the test's transaction keeps its connection between the
    requests (Django closes it after each request otherwise)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_the_api_keeps_its_openapi_contract(_one_connection, make_user, make_product):
    from warenhaus.accounts.services import issue_token
    from warenhaus.wsgi import application

    make_product(sku="FUZZ-1", price="19.99", on_hand=5)
    staff = make_user(roles=sorted(ROLES))
    schema = schemathesis.openapi.from_wsgi(
        "/api/v1/openapi.json", application, config=SchemathesisConfig.from_str(CONFIG)
    )
    HEADERS["Authorization"] = f"Bearer {issue_token(user=staff)}"
    failures = []
    try:
        for result in schema.get_all_operations():
            op = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                failures += _failures(op, mode)
    finally:
        HEADERS.clear()
    assert failures == [], "\n".join(sorted(set(failures)))
