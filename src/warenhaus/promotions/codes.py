"""Voucher codes as strings: the alphabet, generation, the check character, normalisation, and
the keyed digests under which codes are stored.

Generated codes are 11 random characters plus one check character from a 31-letter alphabet
without the look-alikes 0/O, 1/I/L, grouped in fours (``WH7K-3M9Q-X2CP``). The check character
makes the weighted sum ``sum((i + 1) * value)`` of all twelve characters divisible by 31. As 31
is prime and the weights 1..12 are distinct and non-zero modulo 31, every single wrong
character and every swap of two neighbouring characters changes the sum, so such typos are
refused without asking the database (``voucher_typo``).

The database never holds a usable code: only ``HMAC-SHA256(secret, normalised code)``, a
three-character hint for people, and keyed digests of the first 4..8 characters so that staff
can block every code that starts with a pattern.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from functools import lru_cache

from django.conf import settings

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
MODULUS = len(ALPHABET)  # 31, a prime
VALUE = {c: i for i, c in enumerate(ALPHABET)}
AMBIGUOUS = set("0O1IL")
RANDOM_LENGTH = 11
GENERATED_LENGTH = RANDOM_LENGTH + 1
GROUP = 4
HEAD_LENGTHS = (4, 5, 6, 7, 8)
HINT_LENGTH = 3
#: what people may type around a code: spaces and dashes are ignored, case does not matter
_SEPARATORS = re.compile(r"[\s\-_]+")
PLAIN_CODE = re.compile(r"[A-Z0-9]{4,32}")

if not (MODULUS == 31 and len(set(ALPHABET)) == 31 and not set(ALPHABET) & AMBIGUOUS):
    raise ImportError("The code alphabet must be 31 unambiguous characters (the check is mod 31).")


def normalise(raw: str) -> str:
    return _SEPARATORS.sub("", str(raw or "")).upper()


def _weighted_sum(chars: str) -> int:
    return sum((i + 1) * VALUE[c] for i, c in enumerate(chars)) % MODULUS


def check_character(payload: str) -> str:
    """The character that, appended at position ``len(payload) + 1``, makes the sum 0 mod 31."""
    weight = len(payload) + 1
    s = _weighted_sum(payload)
    # find v with s + weight * v == 0 (mod 31): v = -s * weight^-1
    v = (-s * pow(weight, -1, MODULUS)) % MODULUS
    return ALPHABET[v]


def is_valid_generated(code: str) -> bool:
    return (
        len(code) == GENERATED_LENGTH and all(c in VALUE for c in code) and _weighted_sum(code) == 0
    )


def looks_generated(code: str) -> bool:
    """Has the shape of a generated code (length and letters, look-alikes included): such a code
    is checked by its check character before anything else."""
    return len(code) == GENERATED_LENGTH and all(c in VALUE or c in AMBIGUOUS for c in code)


def generate() -> str:
    payload = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return payload + check_character(payload)


def display(code: str) -> str:
    """``WH7K3M9QX2CP`` -> ``WH7K-3M9Q-X2CP``."""
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


@lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"warenhaus.promotions.code-digest", hashlib.sha256).digest()


def _secret_key() -> bytes:
    return _key(settings.VOUCHER_CODE_SECRET)


def digest(code: str) -> str:
    """The stored form of a normalised code."""
    return hmac.new(_secret_key(), b"code:" + code.encode(), hashlib.sha256).hexdigest()


def head_digest(prefix: str) -> str:
    return hmac.new(
        _secret_key(), f"head{len(prefix)}:{prefix}".encode(), hashlib.sha256
    ).hexdigest()[:24]


def heads(code: str) -> dict:
    """``{"head4": ..., ..., "head8": ...}`` for the model's fields (keyed like the code itself,
    so they tell nothing without the secret); empty where the code is shorter."""
    return {f"head{n}": (head_digest(code[:n]) if len(code) >= n else "") for n in HEAD_LENGTHS}


def hint(code: str) -> str:
    return code[-HINT_LENGTH:]
