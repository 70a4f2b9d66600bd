"""The CSV every export writes: no cell a spreadsheet evaluates, every value readable back."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warenhaus.core import csvsafe

formula_like = st.builds(
    lambda start, rest: start + rest,
    st.sampled_from(csvsafe.DANGEROUS_STARTS),
    st.text(max_size=20),
)
cells = st.one_of(
    st.text(max_size=30),
    formula_like,
    st.integers(),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.none(),
)


def _written(rows) -> list[list[str]]:
    buf = io.StringIO()
    csvsafe.writer(buf).writerows(rows)
    return list(csv.reader(io.StringIO(buf.getvalue(), newline="")))


@given(st.lists(st.lists(cells, min_size=1, max_size=6), min_size=1, max_size=5))
def test_no_written_cell_starts_like_a_formula_unless_it_is_a_plain_number(rows):
    for row in _written(rows):
        for value in row:
            assert not value.startswith(csvsafe.DANGEROUS_STARTS) or csvsafe.PLAIN_NUMBER.fullmatch(
                value
            ), value


@given(st.lists(cells, min_size=1, max_size=6))
def test_a_cell_reads_back_as_its_value_with_at_most_a_leading_apostrophe(row):
    written = _written([row])[0]
    for value, text in zip(row, written, strict=True):
        original = "" if value is None else str(value)
        assert text in (original, "'" + original)


@pytest.mark.parametrize(
    "value,text",
    [
        ("=cmd|'/Ccalc'!A0@example.org", "'=cmd|'/Ccalc'!A0@example.org"),
        ("+1+1@example.org", "'+1+1@example.org"),
        ("-2+3@example.org", "'-2+3@example.org"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("+49 30 1234567", "'+49 30 1234567"),
        ("-5.00", "-5.00"),
        (Decimal("-5.00"), "-5.00"),
        ("-7", "-7"),
        ("49.97", "49.97"),
        ("erika@example.de", "erika@example.de"),
        ("a=b", "a=b"),
        (None, ""),
    ],
)
def test_formulas_get_an_apostrophe_and_plain_numbers_stay_numbers(value, text):
    assert csvsafe.cell(value) == text
