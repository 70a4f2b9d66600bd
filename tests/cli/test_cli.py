"""The ``warenhaus`` command line, through its entry point ``warenhaus.cli.main``."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate

from warenhaus.accounts.models import User
from warenhaus.accounts.roles import roles_of
from warenhaus.cli import main
from warenhaus.core.models import AuditEntry


def test_help_lists_the_subcommands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for sub in ("migrate", "serve", "worker", "demo", "staff create", "manage"):
        assert sub in out
    assert main([]) == 0


def test_an_unknown_subcommand_is_an_error(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_staff_create_makes_an_audited_staff_account(db, capsys):
    assert (
        main(
            [
                "staff",
                "create",
                "--email",
                "Petra@Warenhaus.example",
                "--role",
                "pricing",
                "--role",
                "support",
                "--password",
                "lang-und-sicher-1",
                "--name",
                "Petra Preis",
            ]
        )
        == 0
    )
    assert "petra@warenhaus.example has roles: pricing, support" in capsys.readouterr().out
    user = authenticate(email="petra@warenhaus.example", password="lang-und-sicher-1")
    assert user is not None and user.is_staff and roles_of(user) == {"pricing", "support"}
    assert AuditEntry.objects.filter(
        action="staff.create", object_type="accounts.user", object_id=str(user.pk), source="cli"
    ).exists()


def test_staff_create_can_generate_a_password(db, capsys):
    assert (
        main(
            [
                "staff",
                "create",
                "--email",
                "risk2@warenhaus.example",
                "--role",
                "risk",
                "--password",
                "-",
            ]
        )
        == 0
    )
    password = capsys.readouterr().out.split("password: ")[1].strip()
    assert authenticate(email="risk2@warenhaus.example", password=password) is not None


def test_staff_create_with_an_unknown_role_fails_and_creates_nobody(db, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "staff",
                "create",
                "--email",
                "eve@warenhaus.example",
                "--role",
                "overlord",
                "--password",
                "lang-und-sicher-1",
            ]
        )
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "overlord" in err and "invalid choice" in err
    assert not User.objects.filter(email="eve@warenhaus.example").exists()


def test_staff_create_with_a_bad_email_fails(db, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "staff",
                "create",
                "--email",
                "not-an-address",
                "--role",
                "support",
                "--password",
                "lang-und-sicher-1",
            ]
        )
    assert exit_.value.code == 1
    assert "invalid_email" in capsys.readouterr().err
    assert not User.objects.filter(email="not-an-address").exists()


def test_staff_roles_lists_every_role(db, capsys):
    from warenhaus.accounts.roles import ROLES

    assert main(["staff", "roles"]) == 0
    out = capsys.readouterr().out
    assert all(role in out for role in ROLES)


def test_worker_help_shows_its_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["worker", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--requeue-interval" in out and "--batch" in out


def test_serve_and_demo_help(capsys):
    for sub, option in (("serve", "--dev"), ("demo", "--no-serve")):
        with pytest.raises(SystemExit):
            main([sub, "--help"])
        assert option in capsys.readouterr().out
