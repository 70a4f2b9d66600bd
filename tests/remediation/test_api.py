"""Remediation over the API, as in API.md: preview with an Idempotency-Key, execute, follow,
export."""

from __future__ import annotations

import pytest

from warenhaus.orders.models import Order

from .conftest import run_worker
from .test_jobs import leak  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db

BODY = {
    "selector": {"voucher_codes": ["LEAK400"]},
    "actions": ["cancel", "notify", {"goodwill_voucher": {"amount": "10.00", "currency": "EUR"}}],
    "dry_run": True,
}


def test_preview_then_execute_then_follow_and_export(leak, api_as, support, risk):
    client = api_as(risk)
    r = client.post("/remediations", BODY, headers={"Idempotency-Key": "rem-1"})
    assert r.status_code == 201, r.content
    job = r.json()
    assert (
        job["state"] == "preview"
        and job["preview"]["orders"] == 4
        and job["preview"]["affected"]["orders"] == 3
    )
    assert job["preview"]["amounts"]["total"]["currency"] == "EUR" and job["export"] is None
    # the same key and body replay the first answer; another body with it is refused
    again = client.post("/remediations", BODY, headers={"Idempotency-Key": "rem-1"})
    assert again.status_code == 201 and again.json()["id"] == job["id"]
    other = client.post(
        "/remediations", {**BODY, "actions": ["hold"]}, headers={"Idempotency-Key": "rem-1"}
    )
    assert other.status_code == 422
    assert all(Order.objects.get(number=o.number).status != "cancelled" for o in leak["leaked"])

    assert (
        api_as(risk).post(f"/remediations/{job['id']}/execute").json()["code"]
        == "four_eyes_required"
    )
    client = api_as(support)  # the second pair of eyes executes
    r = client.post(f"/remediations/{job['id']}/execute")
    assert r.status_code == 202 and r.json()["state"] == "queued"
    assert r.json()["progress"]["orders_total"] == 4
    run_worker()
    r = client.get(f"/remediations/{job['id']}")
    body = r.json()
    assert body["state"] == "done" and body["progress"]["percent"] == 100
    assert (
        body["counts"]["cancelled"] == 3
        and body["counts"]["out_of_reach"] == 1
        and body["counts"]["notified"] == 2
    )
    again = client.post(f"/remediations/{job['id']}/execute")
    assert again.status_code == 200 and again.json()["counts"] == body["counts"]

    csv = client.get(f"/remediations/{job['id']}/export.csv")
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    text = b"".join(csv.streaming_content).decode()
    assert text.count("\n") == 5 and "cancelled" in text

    items = client.get(f"/remediations/{job['id']}/items", outcome="cancelled").json()
    assert len(items["items"]) == 3 and {i["outcome"] for i in items["items"]} == {"cancelled"}
    listing = client.get("/remediations").json()
    assert listing["items"][0]["id"] == job["id"]


def test_dry_run_false_executes_at_once_and_needs_the_run_capability(leak, api_as, author, support):
    r = api_as(author).post(
        "/remediations", {**BODY, "dry_run": False}, headers={"Idempotency-Key": "now-1"}
    )
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    r = api_as(support).post(
        "/remediations", {**BODY, "dry_run": False}, headers={"Idempotency-Key": "now-2"}
    )
    assert (
        r.status_code == 403 and r.json()["code"] == "four_eyes_required"
    )  # goodwill needs a second person
    r = api_as(support).post(
        "/remediations",
        {**BODY, "actions": ["cancel", "notify"], "dry_run": False},
        headers={"Idempotency-Key": "now-3"},
    )
    assert r.status_code == 201 and r.json()["state"] == "queued"


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"selector": {}, "actions": ["cancel"]}, 422, "invalid_selector"),
        (
            {"selector": {"voucher_codes": ["GIBTSNICHT"]}, "actions": ["cancel"]},
            422,
            "unknown_voucher_code",
        ),
        ({"selector": {"order_numbers": ["WH-1"]}, "actions": "cancel"}, 422, "validation_error"),
        (
            {
                "selector": {"order_numbers": ["WH-1"]},
                "actions": [{"goodwill_voucher": {"amount": "-5", "currency": "EUR"}}],
            },
            422,
            "invalid_money",
        ),
        ({"selector": "all", "actions": ["cancel"]}, 422, None),
        ({"actions": ["cancel"]}, 422, None),
    ],
)
def test_bad_bodies_get_a_problem(api_as, support, body, status, code):
    r = api_as(support).post(
        "/remediations", body, headers={"Idempotency-Key": f"bad-{code}-{len(str(body))}"}
    )
    assert r.status_code == status, r.content
    assert r["Content-Type"].startswith("application/problem+json")
    if code:
        assert r.json()["code"] == code


def test_missing_key_and_unknown_job(api_as, support):
    client = api_as(support)
    assert client.post("/remediations", BODY).json()["code"] == "idempotency_key_missing"
    for path in (
        "/remediations/999999",
        "/remediations/abc",
        "/remediations/999999/items",
        "/remediations/999999/export.csv",
    ):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["code"] == "remediation_not_found", path
    r = client.post("/remediations/999999/execute")
    assert r.status_code == 404 and r.json()["code"] == "remediation_not_found"
