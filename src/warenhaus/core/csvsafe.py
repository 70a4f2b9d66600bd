"""CSV that a spreadsheet cannot run: every CSV the shop writes goes through :func:`writer`.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to
Excel and LibreOffice (``=cmd|'/Ccalc'!A0@example.org`` is a valid e-mail address), so it gets a
leading apostrophe, which they show as text (OWASP, CSV injection). A plain decimal number such as
``-5.00`` is no formula and stays as it is, so amounts stay numbers in the spreadsheet.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable

DANGEROUS_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def cell(value) -> str:
    """``value`` as the text of one cell that no spreadsheet evaluates (None: empty)."""
    text = "" if value is None else str(value)
    if text.startswith(DANGEROUS_STARTS) and not PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


class writer:  # noqa: N801 - used like csv.writer
    """``csv.writer`` whose rows are made safe cell by cell."""

    def __init__(self, f, **kwargs):
        self._writer = csv.writer(f, **kwargs)

    def writerow(self, row: Iterable):
        return self._writer.writerow([cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable]):
        for row in rows:
            self.writerow(row)
