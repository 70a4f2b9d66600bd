"""Generated codes: random, from an unambiguous alphabet, and a check character that catches
every single wrong character and every swap of neighbours without asking the database."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from warenhaus.promotions import codes

code_strategy = st.builds(lambda _: codes.generate(), st.integers())


def test_shape_and_alphabet():
    for _ in range(200):
        c = codes.generate()
        assert len(c) == 12 and codes.is_valid_generated(c)
        assert not set(c) & set("0O1IL")
        shown = codes.display(c)
        assert shown.count("-") == 2 and codes.normalise(shown) == c
        assert codes.normalise(shown.lower().replace("-", " ")) == c


def test_codes_do_not_repeat():
    assert len({codes.generate() for _ in range(5000)}) == 5000


@settings(max_examples=300, deadline=None)
@given(
    code=code_strategy,
    position=st.integers(0, 11),
    replacement=st.sampled_from(codes.ALPHABET + "0O1IL"),
)
def test_every_single_character_typo_is_caught(code, position, replacement):
    typo = code[:position] + replacement + code[position + 1 :]
    if typo != code:
        assert not codes.is_valid_generated(typo)


@settings(max_examples=300, deadline=None)
@given(code=code_strategy, position=st.integers(0, 10))
def test_every_adjacent_transposition_is_caught(code, position):
    swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
    if swapped != code:
        assert not codes.is_valid_generated(swapped)


def test_exhaustively_for_one_code():
    code = codes.generate()
    for i in range(len(code)):
        for ch in codes.ALPHABET:
            if ch != code[i]:
                assert not codes.is_valid_generated(code[:i] + ch + code[i + 1 :])


def test_digests_are_keyed_and_stable(settings):
    d = codes.digest("SOMMER10")
    assert d == codes.digest("SOMMER10") and "SOMMER10" not in d and len(d) == 64
    settings.VOUCHER_CODE_SECRET = "another-secret"
    assert codes.digest("SOMMER10") != d
