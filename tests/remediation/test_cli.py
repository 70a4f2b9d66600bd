"""``warenhaus remediation`` from the command line: preview changes nothing, execute in the
foreground draws progress, executing again changes nothing, export writes the CSV."""

from __future__ import annotations

import pytest

from warenhaus.cli import main
from warenhaus.orders.models import Order

from .test_jobs import leak  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keep_the_test_connection(monkeypatch):
    """Management commands close every connection when they finish; the test's own must stay."""
    from django.db import connections

    monkeypatch.setattr(connections, "close_all", lambda: None)


def test_preview_execute_export(leak, support, risk, capsys, tmp_path):
    assert (
        main(
            [
                "remediation",
                "preview",
                "--codes",
                "LEAK400",
                "--cancel",
                "--goodwill",
                "10.00",
                "--reason",
                "Leck",
                "--by",
                risk.email,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "selects 4 orders of 3 customers" in out
        and "out of reach): 1" in out
        and "Nothing has changed" in out
    )
    assert "cancels 3 orders" in out and "2 vouchers of 10.00 EUR" in out
    assert not Order.objects.filter(status="cancelled").exists()
    job_id = int(out.split()[1])

    assert main(["remediation", "execute", str(job_id), "--by", support.email, "--foreground"]) == 0
    out = capsys.readouterr().out
    assert "100%" in out and "done" in out and "cancelled=3" in out and "notified=2" in out
    assert Order.objects.filter(status="cancelled").count() == 3

    assert main(["remediation", "execute", str(job_id), "--by", support.email]) == 0
    assert "already done" in capsys.readouterr().out

    target = tmp_path / "out.csv"
    assert main(["remediation", "export", str(job_id), "--output", str(target)]) == 0
    assert target.read_text().count("\n") == 5
    assert main(["remediation", "show", str(job_id)]) == 0 and "100%" in capsys.readouterr().out
    assert main(["remediation", "list"]) == 0 and "Leck" in capsys.readouterr().out


def _fails(argv, capsys, message):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 1 and message in capsys.readouterr().err


def test_errors_are_clear(leak, support, author, capsys):
    _fails(
        [
            "remediation",
            "preview",
            "--codes",
            "NOPE9999",
            "--cancel",
            "--reason",
            "x",
            "--by",
            support.email,
        ],
        capsys,
        "unknown_voucher_code",
    )
    _fails(
        [
            "remediation",
            "preview",
            "--codes",
            "LEAK400",
            "--cancel",
            "--reason",
            "x",
            "--by",
            "nobody@example.de",
        ],
        capsys,
        "no account",
    )
    main(
        [
            "remediation",
            "preview",
            "--codes",
            "LEAK400",
            "--cancel",
            "--reason",
            "x",
            "--by",
            author.email,
        ]
    )
    from warenhaus.remediation.models import Job

    _fails(
        ["remediation", "execute", str(Job.objects.get().pk), "--by", author.email],
        capsys,
        "forbidden",
    )
