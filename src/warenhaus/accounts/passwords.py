"""The password policy, the same for shoppers and staff.

At least 12 characters; not the e-mail address, nor containing it; not on Django's list of
20,000 common (breached) passwords; and not easy to guess by zxcvbn's estimate (score 3 of 4,
about 10^8 guesses and more), which knows common and breached passwords, words, names, dates,
keyboard rows and repeats, and is told the account's e-mail address and name. The checks are
Django password validators (``AUTH_PASSWORD_VALIDATORS``), so any Django sign-up form applies
them too.
"""

from __future__ import annotations

import re
import threading

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.translation import gettext as _

from . import errors

MIN_LENGTH = 12
#: zxcvbn's score from 0 (too guessable) to 4 (very unguessable); 3 is its own advice
ZXCVBN_MIN_SCORE = 3
#: zxcvbn refuses longer input; the beginning of a longer password is judged (a weak beginning
#: is refused: it is what a guesser tries first)
ZXCVBN_MAX_LENGTH = 72

# zxcvbn keeps the user inputs of a call in a module-level dictionary
_zxcvbn_lock = threading.Lock()


def _user_inputs(user) -> list[str]:
    email = (getattr(user, "email", "") or "").lower()
    local = email.partition("@")[0]
    name = getattr(user, "name", "") or ""
    return [
        s
        for s in {email, local, *re.split(r"[._+\-]", local), *name.lower().split()}
        if len(s) >= 3
    ]


class EmailValidator:
    """Not the e-mail address, not containing it, and not its part before the @."""

    def validate(self, password, user=None):
        email = (getattr(user, "email", "") or "").lower()
        if not email:
            return
        text = password.lower()
        if email in text or text == email.partition("@")[0]:
            raise ValidationError(
                _("The password must not be or contain your e-mail address."),
                code="password_contains_email",
            )

    def get_help_text(self):
        return _("Your password must not be or contain your e-mail address.")


class ZxcvbnValidator:
    """Not easy to guess, by zxcvbn's estimate (common and breached passwords, words, names,
    dates, keyboard rows, repeats, and the account's own e-mail address and name)."""

    def __init__(self, min_score: int = ZXCVBN_MIN_SCORE):
        self.min_score = min_score

    def validate(self, password, user=None):
        from zxcvbn import zxcvbn

        score = 0
        if password:  # zxcvbn cannot score nothing
            with _zxcvbn_lock:
                score = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=_user_inputs(user))[
                    "score"
                ]
        if score < self.min_score:
            raise ValidationError(
                _(
                    "The password is too easy to guess: it resembles common or breached passwords, words, names, dates or simple patterns such as repeated characters or keyboard rows."
                ),
                code="password_too_guessable",
            )

    def get_help_text(self):
        return _("Your password must not be easy to guess.")


def check(password: str, *, email: str, name: str = "") -> None:
    """Refuse a password that breaks the policy: 422 ``weak_password``, the detail in English
    with every reason, and ``reasons`` (the validators' codes) for the pages to say in the
    shopper's language."""
    from .models import User

    with translation.override("en"):
        try:
            validate_password(password, User(email=email, name=name))
        except ValidationError as err:
            reasons = [e.code for e in err.error_list]
            detail = (
                " ".join(err.messages)
                + " Several unrelated words make a long password that is easy to remember."
            )
            raise errors.refusal(
                "weak_password", detail, reasons=reasons, min_length=MIN_LENGTH
            ) from None
