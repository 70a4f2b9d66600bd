"""CSV injection (issue 13, finding 6): guests whose e-mail addresses are spreadsheet formulas
check out, a remediation job takes their orders, and its CSV, from the API, the console and the
command line, shows each address as text that no spreadsheet runs."""

from __future__ import annotations

import csv
import io

import pytest

from warenhaus.cli import main
from warenhaus.core.csvsafe import DANGEROUS_STARTS, PLAIN_NUMBER
from warenhaus.remediation import services

from .conftest import run_worker

pytestmark = pytest.mark.django_db

FORMULA_ADDRESSES = ["=cmd|'/Ccalc'!A0@example.org", "+1+1@example.org", "-2+3@example.org"]


@pytest.fixture(autouse=True)
def _keep_the_test_connection(monkeypatch):
    """Management commands close every connection when they finish; the test's own must stay."""
    from django.db import connections

    monkeypatch.setattr(connections, "close_all", lambda: None)


@pytest.fixture
def job(api, make_product, address, support, make_user):
    """A done remediation job (hold and notify) over the orders of three guests who checked out
    over the API with formula addresses."""
    numbers = []
    sku = make_product(price="19.99", on_hand=10).variants.get().sku
    for n, email in enumerate(FORMULA_ADDRESSES):
        cart = api.post("/carts").json()["id"]
        assert api.post(f"/carts/{cart}/lines", {"sku": sku, "quantity": 1}).status_code == 200
        r = api.post(
            f"/carts/{cart}/checkout",
            {"email": email, "shipping_address": address, "payment_method": "invoice"},
            headers={"Idempotency-Key": f"guest-{n}"},
        )
        assert r.status_code == 201, r.content
        assert r.json()["email"] == email.lower()  # addresses are kept in lower case
        numbers.append(r.json()["number"])
    made = services.create_job(
        actor=support,
        selector={"order_numbers": numbers},
        actions=["hold", "notify"],
        dry_run=False,
        reason="Probe",
    )
    run_worker()
    made.refresh_from_db()
    assert made.state == "done"
    return made


@pytest.fixture
def support(make_user):
    return make_user(roles=["support"])


def _assert_safe(text: str) -> None:
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    emails = [row[header.index("email")] for row in body]
    assert sorted(emails) == sorted("'" + a.lower() for a in FORMULA_ADDRESSES)
    for row in rows:
        for value in row:
            assert not value.startswith(DANGEROUS_STARTS) or PLAIN_NUMBER.fullmatch(value), value


def test_the_api_export_shows_formula_addresses_as_text(job, api_as, support):
    r = api_as(support).get(f"/remediations/{job.pk}/export.csv")
    assert r.status_code == 200
    _assert_safe(b"".join(r.streaming_content).decode())


def test_the_console_export_shows_formula_addresses_as_text(job, client, support):
    client.force_login(support)
    r = client.get(f"/console/remediation/{job.pk}/export.csv")
    assert r.status_code == 200
    _assert_safe(b"".join(r.streaming_content).decode())


def test_the_command_line_export_shows_formula_addresses_as_text(job, tmp_path):
    target = tmp_path / "out.csv"
    assert main(["remediation", "export", str(job.pk), "--output", str(target)]) == 0
    _assert_safe(target.read_text())
