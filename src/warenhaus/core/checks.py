"""The secrets production needs, and the checks that refuse a production start without them.

``warenhaus serve`` (gunicorn), ``warenhaus worker`` and the WSGI application itself refuse to
start in production mode while any secret is missing, the demo's public value, too short, or the
same as another; ``check --deploy`` reports the same. Only ``warenhaus demo`` (which makes its
own, :mod:`warenhaus.core.demo_secrets`), ``serve --dev`` and the tests run without them.
"""

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

DEMO_SECRET_PREFIX = "demo-only-insecure-"  # noqa: S105  (a marker prefix, not a password)
#: each secret, and what it protects
SECRETS = {
    "SECRET_KEY": "sessions, CSRF, signed links and queue arrivals",
    "VOUCHER_CODE_SECRET": "the stored digests of voucher codes",
    "GOODWILL_CODE_SECRET": "the goodwill codes of remediation jobs",
}
MIN_SECRET_LENGTH = 32
HOW_TO_MAKE_ONE = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


def secret_problems() -> list[tuple[str, str]]:
    """``(variable, what is wrong)`` for every production secret that is not fit for use."""
    problems = []
    seen: dict[str, str] = {}
    for name, protects in SECRETS.items():
        value = str(getattr(settings, name, "") or "")
        if not value or value.startswith(DEMO_SECRET_PREFIX):
            problems.append(
                (
                    name,
                    f"{name} is not set (the built-in value is the demo's, public with the source code; it protects {protects}).",
                )
            )
        elif len(value) < MIN_SECRET_LENGTH:
            problems.append((name, f"{name} is shorter than {MIN_SECRET_LENGTH} characters."))
        elif value in seen:
            problems.append(
                (name, f"{name} is the same as {seen[value]}: each secret must be its own.")
            )
        seen.setdefault(value, name)
    return problems


def require_production_secrets(what: str) -> None:
    """Refuse to go on (``ImproperlyConfigured``, naming each variable) unless every production
    secret is fit for use; ``what`` names what is refusing to start."""
    problems = secret_problems()
    if problems:
        lines = "\n".join(f"  - {message}" for _name, message in problems)
        raise ImproperlyConfigured(
            f"{what} refuses to start in production mode:\n{lines}\n"
            f"Set each in the environment to its own long random string, for example: {HOW_TO_MAKE_ONE}\n"
            "(Only `warenhaus demo`, which makes its own, `warenhaus serve --dev` and the tests run without them; see README, Security.)"
        )


@register(Tags.security, deploy=True)
def production_secrets_are_set(app_configs, **kwargs):
    ids = {name: f"warenhaus.E00{i}" for i, name in enumerate(SECRETS, start=1)}
    return [
        Error(message, hint=f"Set {name} to a long random string: {HOW_TO_MAKE_ONE}", id=ids[name])
        for name, message in secret_problems()
    ]
