"""Accounts: registration, tokens, guessing limits, roles."""

from __future__ import annotations

from warenhaus.accounts.models import ApiToken


def test_production_hashes_passwords_with_argon2():
    # The suite swaps in a fast hasher; the configuration itself must say argon2.
    import warenhaus.settings as configured

    assert configured.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
    from django.contrib.auth.hashers import Argon2PasswordHasher

    assert Argon2PasswordHasher().encode("x", Argon2PasswordHasher().salt()).startswith("argon2$")


def test_register_login_me(api, db):
    created = api.post(
        "/auth/register",
        {"email": "Erika@Example.de", "password": "Sehr-Geheim-42", "name": "Erika"},
    )
    assert (
        created.status_code == 201
        and created.json()["email"] == "erika@example.de"
        and created.json()["roles"] == []
    )
    token = api.post(
        "/auth/token", {"email": "erika@example.de", "password": "Sehr-Geheim-42"}
    ).json()["token"]
    assert not ApiToken.objects.filter(digest=token).exists()  # stored hashed only
    api.token = token
    assert api.get("/me").json()["email"] == "erika@example.de"


def test_register_refuses_duplicates_and_weak_passwords(api, shopper):
    dup = api.post("/auth/register", {"email": shopper.email, "password": "Sehr-Geheim-42"})
    assert dup.status_code == 409 and dup.json()["code"] == "email_taken"
    weak = api.post("/auth/register", {"email": "neu@example.de", "password": "123"})
    assert weak.status_code == 422 and weak.json()["code"] == "weak_password"
    bad = api.post("/auth/register", {"email": "kein-at", "password": "Sehr-Geheim-42"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_email"


def test_wrong_password_is_401_and_guessing_is_rate_limited(api, shopper, settings):
    settings.LOGIN_RATE_LIMIT = 3
    for _ in range(3):
        resp = api.post("/auth/token", {"email": shopper.email, "password": "falsch"})
        assert resp.status_code == 401 and resp.json()["code"] == "invalid_credentials"
    locked = api.post("/auth/token", {"email": shopper.email, "password": "Geheim-Passwort-1"})
    assert locked.status_code == 429 and locked.json()["code"] == "rate_limited"
    assert int(locked["Retry-After"]) > 0


def test_staff_roles_are_reported(api_as, make_user):
    user = make_user(roles=["support", "risk"])
    assert api_as(user).get("/me").json()["roles"] == ["risk", "support"]


def test_staff_create_is_audited(make_user):
    from warenhaus.core.models import AuditEntry

    user = make_user(roles=["catalog"])
    entry = AuditEntry.objects.get(action="staff.create", object_id=str(user.pk))
    assert entry.after == {"roles": ["catalog"]}
