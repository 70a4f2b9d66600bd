"""German at /, English at /en/, a switcher that keeps the page, complete catalogues, and money
formatted the way each language writes it."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

import warenhaus
from warenhaus.web.forms import normalise_amount
from warenhaus.web.templatetags.shop import format_money

LOCALE = Path(warenhaus.__file__).parent / "locale"


@pytest.mark.parametrize(
    "value,lang,text",
    [
        (Decimal("1299"), "de", "1.299,00 €"),
        (Decimal("1299"), "en", "€1,299.00"),
        (Decimal("0.5"), "de", "0,50 €"),
        ("49.97", "de", "49,97 €"),
        ({"amount": "1234567.89", "currency": "EUR"}, "de", "1.234.567,89 €"),
        ({"amount": "1234567.89", "currency": "EUR"}, "en", "€1,234,567.89"),
        (Decimal("-4.90"), "de", "-4,90 €"),
        (None, "de", ""),
        ("kaputt", "de", ""),
    ],
)
def test_money_format(value, lang, text):
    assert format_money(value, language=lang) == text


@pytest.mark.parametrize(
    "raw,lang,out",
    [
        ("1.299,00", "de", "1299.00"),
        ("49,97", "de", "49.97"),
        ("49.97", "de", "49.97"),
        ("1.299", "de", "1299"),
        ("1,299.00", "en", "1299.00"),
        ("49.97", "en", "49.97"),
        ("49,97", "en", "49.97"),
        (" 12 € ", "de", "12"),
    ],
)
def test_amount_input_is_normalised(raw, lang, out):
    assert normalise_amount(raw, lang) == out


def _switch(client, page: str, language: str):
    """Press the switcher's button for ``language`` on ``page``."""
    import re

    html = client.get(page).content.decode()
    form = re.search(r'<form class="lang-switch".*?</form>', html, re.S).group(0)
    nxt = re.search(r'name="next" value="([^"]*)"', form).group(1)
    return client.post("/i18n/setlang/", {"language": language, "next": nxt.replace("&amp;", "&")})


@pytest.mark.django_db
def test_language_switch_keeps_the_page(client):
    r = _switch(client, "/cart/", "en")
    assert r.status_code == 302 and r["Location"] == "/en/cart/"
    html = client.get("/en/cart/").content.decode()
    assert "Your cart" in html and 'lang="en"' in html
    r = _switch(client, "/en/cart/", "de")
    assert r.status_code == 302 and r["Location"] == "/cart/"
    assert "Ihr Warenkorb" in client.get("/cart/").content.decode()
    r = _switch(client, "/en/search/?q=kettle", "de")
    assert r["Location"] == "/search/?q=kettle"
    r = _switch(client, "/search/?q=kettle", "en")
    assert r["Location"] == "/en/search/?q=kettle"


@pytest.mark.django_db
def test_every_page_offers_the_switcher(client):
    html = client.get("/").content.decode()
    assert 'action="/i18n/setlang/"' in html and 'value="en"' in html and 'value="de"' in html


@pytest.mark.django_db
def test_english_pages_are_english(client, make_product):
    p = make_product(title="Kettle", price="29.99")
    html = client.get(f"/en/product/{p.slug}/").content.decode()
    assert "Add to cart" in html and "€29.99" in html and "In den Warenkorb" not in html
    html = client.get(f"/product/{p.slug}/").content.decode()
    assert "In den Warenkorb" in html and "29,99 €" in html


def _entries(po: Path):
    """(msgid, has translation) for each entry of a .po file, parsed with msgcat's help."""
    out = subprocess.run(
        ["msgattrib", "--untranslated", "--no-wrap", str(po)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line.startswith("msgid ") and line != 'msgid ""']


@pytest.mark.parametrize("lang", ["de", "en"])
def test_catalogues_are_complete_and_compiled(lang, tmp_path):
    po = LOCALE / lang / "LC_MESSAGES" / "django.po"
    mo = LOCALE / lang / "LC_MESSAGES" / "django.mo"
    assert po.exists() and mo.exists()
    assert _entries(po) == [], f"untranslated strings in {po}"
    fuzzy = subprocess.run(
        ["msgattrib", "--only-fuzzy", "--no-wrap", str(po)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "msgid " not in fuzzy.replace('msgid ""', ""), f"fuzzy entries in {po}"
    fresh = tmp_path / "fresh.mo"
    subprocess.run(["msgfmt", "--check", "-o", str(fresh), str(po)], check=True)
    assert fresh.read_bytes() == mo.read_bytes(), f"{mo} is stale: run compilemessages"
