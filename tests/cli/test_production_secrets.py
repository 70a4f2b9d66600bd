"""Production never runs with the public demo secrets (issue 13, finding 2).

The probe started ``warenhaus serve`` without ``SECRET_KEY`` or ``VOUCHER_CODE_SECRET``; with the
key from settings.py it forged a queue arrival and computed a goodwill code offline. Now every way
of starting production refuses, naming the variables, and goodwill codes hang on a secret that
exists only for them."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core import signing
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from warenhaus.core import checks, demo_secrets

SRC = Path(__file__).resolve().parents[2] / "src"
DEMO_KEY = "demo-only-insecure-key-change-me-in-production-0123456789"  # what settings.py publishes
OWN = {name: f"{name.lower()}-{'x' * 40}" for name in checks.SECRETS}


@pytest.fixture
def bare_env(tmp_path):
    """A production environment as the probe had it: none of the secrets set."""
    env = {k: v for k, v in os.environ.items() if k not in checks.SECRETS}
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
            "WARENHAUS_VAR": str(tmp_path / "var"),
            "DJANGO_SETTINGS_MODULE": "warenhaus.settings",
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(SRC), os.environ.get("PYTHONPATH", "")])
            ),
            "DEBUG": "0",
            "ACCESS_LOG": "",
        }
    )
    env.pop("REDIS_URL", None)
    return env


def _run(args: list[str], env: dict, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_serve_refuses_to_start_without_the_secrets_and_names_each(bare_env, tmp_path):
    done = _run(
        ["warenhaus.cli", "serve", "--bind", "127.0.0.1:0", "--workers", "1", "--no-collectstatic"],
        bare_env,
        tmp_path,
    )
    assert done.returncode != 0
    for name in checks.SECRETS:
        assert f"{name} is not set" in done.stderr, done.stderr
    assert "warenhaus.gunicorn_conf" not in done.stdout, "gunicorn must not have been started"


def test_serve_refuses_without_the_voucher_secret_alone(bare_env, tmp_path):
    env = dict(
        bare_env, SECRET_KEY=OWN["SECRET_KEY"], GOODWILL_CODE_SECRET=OWN["GOODWILL_CODE_SECRET"]
    )
    done = _run(
        ["warenhaus.cli", "serve", "--bind", "127.0.0.1:0", "--workers", "1", "--no-collectstatic"],
        env,
        tmp_path,
    )
    assert done.returncode != 0
    assert (
        "VOUCHER_CODE_SECRET is not set" in done.stderr
        and "SECRET_KEY is not set" not in done.stderr.replace("VOUCHER_CODE_SECRET", "")
    )


def test_the_demo_key_given_explicitly_is_refused_too(bare_env, tmp_path):
    env = dict(
        bare_env,
        SECRET_KEY=DEMO_KEY,
        VOUCHER_CODE_SECRET=OWN["VOUCHER_CODE_SECRET"],
        GOODWILL_CODE_SECRET=OWN["GOODWILL_CODE_SECRET"],
    )
    done = _run(["warenhaus.cli", "worker", "--batch", "--no-startup-delay"], env, tmp_path)
    assert (
        done.returncode != 0
        and "SECRET_KEY is not set (the built-in value is the demo's" in done.stderr
    ), done.stderr


def test_gunicorn_started_directly_refuses_with_the_config_and_without_it(bare_env, tmp_path):
    """Whoever bypasses ``warenhaus serve``: the config's start hook refuses before forking, and
    the WSGI application itself refuses to load (gunicorn: the worker fails to boot)."""
    with_conf = _run(
        [
            "gunicorn",
            "-c",
            "python:warenhaus.gunicorn_conf",
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "1",
        ],
        bare_env,
        tmp_path,
    )
    assert with_conf.returncode != 0 and "SECRET_KEY is not set" in with_conf.stderr, (
        with_conf.stderr
    )
    plain = _run(
        [
            "gunicorn",
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--timeout",
            "30",
            "warenhaus.wsgi:application",
        ],
        bare_env,
        tmp_path,
    )
    assert plain.returncode != 0 and "refuses to start in production mode" in plain.stderr, (
        plain.stderr[-3000:]
    )


def test_short_and_shared_secrets_are_refused(settings):
    settings.SECRET_KEY = "short"
    settings.VOUCHER_CODE_SECRET = settings.GOODWILL_CODE_SECRET = "y" * 40
    found = dict(checks.secret_problems())
    assert "shorter than 32" in found["SECRET_KEY"]
    assert "same as VOUCHER_CODE_SECRET" in found["GOODWILL_CODE_SECRET"]
    assert "VOUCHER_CODE_SECRET" not in found


def test_check_deploy_reports_each_missing_secret(settings):
    for name in checks.SECRETS:
        setattr(settings, name, f"demo-only-insecure-{name}")
    with pytest.raises(SystemCheckError) as err:
        call_command("check", "--deploy", "--fail-level", "ERROR", "--tag", "security")
    for i in (1, 2, 3):
        assert f"warenhaus.E00{i}" in str(err.value)


def test_the_suite_itself_runs_with_secrets_production_would_accept():
    assert checks.secret_problems() == []


def test_the_demo_makes_its_own_secrets_once_and_keeps_them_private(tmp_path, monkeypatch):
    for name in checks.SECRETS:
        monkeypatch.delenv(name, raising=False)
    made = demo_secrets.ensure(tmp_path)
    assert set(made) == set(checks.SECRETS) and len(set(made.values())) == 3
    assert all(not v.startswith(checks.DEMO_SECRET_PREFIX) and len(v) >= 32 for v in made.values())
    assert stat.S_IMODE((tmp_path / demo_secrets.FILE_NAME).stat().st_mode) == 0o600
    assert all(
        os.environ[name] == value for name, value in made.items()
    )  # its server and worker inherit them
    for name in checks.SECRETS:
        monkeypatch.delenv(name)
    assert demo_secrets.ensure(tmp_path) == made, (
        "the same secrets next time (the demo's voucher digests depend on them)"
    )
    monkeypatch.setenv("SECRET_KEY", OWN["SECRET_KEY"])
    monkeypatch.delenv("VOUCHER_CODE_SECRET")
    assert set(demo_secrets.ensure(tmp_path)) == {"VOUCHER_CODE_SECRET"}, (
        "what the environment gives wins"
    )


def test_an_arrival_forged_with_the_public_demo_key_keeps_no_place(rf):
    """The probe signed ``{deal, time, caller}`` with settings.py's key and jumped the queue."""
    from warenhaus.deals import limiter

    request = rf.post(
        "/api/v1/deals/1/queue", data={"email": "a@example.org"}, content_type="application/json"
    )
    genuine = limiter.arrival_token(request)
    forged_payload = signing.loads(genuine, salt=limiter._ARRIVAL_SALT)
    forged_payload["t"] = time.time() - 120
    forged = signing.dumps(forged_payload, key=DEMO_KEY, salt=limiter._ARRIVAL_SALT)
    assert limiter.arrival_from(request, 1, forged) is None
    assert limiter.arrival_from(request, 1, genuine) is not None


def test_goodwill_codes_hang_on_their_own_secret_only(settings):
    """The probe computed ``HMAC(key, job:customer)`` with the public key. The code depends on
    GOODWILL_CODE_SECRET alone: neither SECRET_KEY nor the voucher secret gives it away."""
    from warenhaus.remediation import goodwill

    who = "email:kundin@example.org"
    code = goodwill.code_for(7, who)
    settings.SECRET_KEY = "another-" + "k" * 40
    settings.VOUCHER_CODE_SECRET = "another-" + "v" * 40
    assert goodwill.code_for(7, who) == code
    for public in (
        DEMO_KEY,
        "demo-only-insecure-goodwill-code-secret",
    ):  # the probe's computation, the public keys in its place
        settings.GOODWILL_CODE_SECRET = public
        assert goodwill.code_for(7, who) != code
