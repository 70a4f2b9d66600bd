"""The remediation console in a real browser (Debian's Chromium via Playwright): support cleans
up after a leaked voucher code, from the wizard through the preview to the progress bar that
reaches 100 % without a reload, and the CSV; once in English, once without JavaScript."""

from __future__ import annotations

import re

import pytest

from tests.conftest import requires_postgres
from tests.promotions.conftest import approver, author, make_campaign  # noqa: F401  (fixtures)
from tests.remediation.conftest import buy  # noqa: F401  (a fixture)
from warenhaus.orders.models import Order
from warenhaus.remediation import services
from warenhaus.remediation.models import Job

from .conftest import browser_login
from .test_console_remediation import colleague, leak, staff, support  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

JOB_URL = re.compile(r"/console/remediation/(\d+)/$")


def _job_id(page) -> int:
    return int(JOB_URL.search(page.url).group(1))


def _fill_wizard(page, *, codes="LEAK400", goodwill="10,00", reason="Leck: Code nie freigegeben"):
    if codes:
        page.fill("textarea[name=voucher_codes]", codes)
    if goodwill:
        page.fill("input[name=goodwill_amount]", goodwill)
    page.fill("textarea[name=reason]", reason)
    page.fill("textarea[name=customer_note]", "Der Code war nicht freigegeben.")
    page.click("#preview-button")  # "Vorschau anzeigen" / "Show preview"
    page.wait_for_url(JOB_URL)


def _execute(page):
    page.check("#confirm")
    page.click("#execute-button")
    page.wait_for_selector("#job-progress")


def test_support_cleans_up_a_leaked_code_and_watches_the_progress_bar(
    browser_page, new_browser_page, leak, support, colleague
):
    page = browser_page
    browser_login(page, "support@warenhaus.example", next_path="/console/")
    page.wait_for_url(re.compile(r"/console/$"))
    page.locator(".console-bar").get_by_role("link", name="Bereinigung").click()
    page.click("#new-remediation")
    assert page.inner_text("h1") == "Bestellungen bereinigen"
    _fill_wizard(page)
    # the preview: nothing changed yet
    assert (
        page.inner_text("#preview-orders") == "4" and page.inner_text("#preview-customers") == "3"
    )
    assert (
        page.inner_text("#preview-out-of-reach") == "1"
        and page.inner_text("#preview-unshipped") == "3"
    )
    assert page.inner_text("#preview-discount") == "160,00 €"
    assert "3" in page.inner_text("#preview-affected") and "20,00 €" in page.inner_text(
        "#preview-goodwill"
    )
    assert page.locator("#preview-sample tbody tr").count() == 4
    assert all(o.status != "cancelled" for o in Order.objects.all())
    assert page.locator("#execute-button").count() == 0 and page.locator("#four-eyes").is_visible()
    job_id = _job_id(page)
    # a colleague executes it (goodwill vouchers: four eyes); the browser asks for the confirmation first
    page = new_browser_page()
    browser_login(page, "kollegin@warenhaus.example", next_path=f"/console/remediation/{job_id}/")
    page.wait_for_url(JOB_URL)
    assert page.inner_text("#confirm-text") == (
        "Ich habe die Vorschau geprüft: 3 Bestellungen stornieren, 2 Personen benachrichtigen "
        "und 2 Gutscheine über 10,00 € ausgeben."
    )
    page.get_by_role("button", name="Ausführen").click()
    assert Job.objects.get(pk=job_id).state == "preview"
    _execute(page)
    assert Job.objects.get(pk=job_id).state == "queued"
    assert page.inner_text("#percent") == "0 %"
    page.evaluate("window.notReloaded = true")
    assert services.run(job_id) == "done"  # the worker, here in the test's thread
    page.wait_for_function("document.querySelector('#percent').innerText.trim() === '100 %'")
    assert page.evaluate("window.notReloaded") is True  # htmx swapped the fragment in
    assert page.get_attribute("#job-progress", "value") == "100"
    assert (
        page.inner_text("#count-cancelled .n") == "3"
        and page.inner_text("#count-out_of_reach .n") == "1"
    )
    assert (
        page.inner_text("#count-notified .n") == "2"
        and page.inner_text("#count-vouchers_issued .n") == "2"
    )
    assert page.locator("#live[hx-trigger]").count() == 0  # polling has stopped
    assert "fertig" in page.inner_text("#live h2")
    assert {o.number for o in Order.objects.filter(status="cancelled")} == {
        o.number for o in leak["leaked"]
    }
    # the CSV
    with page.expect_download() as download:
        page.click("#csv-link")
    lines = open(download.value.path(), encoding="utf-8").read().strip().splitlines()
    assert download.value.suggested_filename == f"remediation-{job_id}.csv"
    assert (
        lines[0].startswith("order,")
        and len(lines) == 5
        and sum(",cancelled," in line for line in lines) == 3
    )
    # the list shows it as done
    page.click(".remediation-nav a[href='/console/remediation/']")
    assert "100 %" in page.inner_text(f"#job-{job_id}")


def test_in_english_the_orders_of_a_campaign_are_put_on_hold(browser_page, leak, support):
    page = browser_page
    browser_login(page, "support@warenhaus.example", next_path="/en/console/")
    page.wait_for_url(re.compile(r"/en/console/$"))
    page.goto(page.url_for(f"/en/console/promotions/{leak['campaign'].pk}/"))
    page.get_by_role("link", name="Clean up orders of this campaign").click()
    page.wait_for_url(re.compile(r"/en/console/remediation/new/\?campaign=\d+$"))
    assert page.locator("select[name=campaign]").input_value() == str(leak["campaign"].pk)
    page.check("input[name=action][value=hold]")
    _fill_wizard(page, codes="", goodwill="", reason="Leak: checking the orders")
    assert "3 orders will be put on hold" in page.inner_text("#preview-affected")
    assert "put 3 orders on hold and notify 2 customers" in page.inner_text("#confirm-text")
    job_id = _job_id(page)
    _execute(page)
    assert services.run(job_id) == "done"
    page.wait_for_function("document.querySelector('#percent').innerText.trim() === '100 %'")
    assert "done" in page.inner_text("#live h2")
    assert page.inner_text("#count-held .n") == "3"
    assert all(Order.objects.get(pk=o.pk).status == "on_hold" for o in leak["leaked"])


def test_without_javascript_the_refresh_link_shows_the_progress(nojs_page, leak, support):
    page = nojs_page
    browser_login(page, "support@warenhaus.example", next_path="/console/remediation/new/")
    page.wait_for_url(re.compile(r"/console/remediation/new/$"))
    _fill_wizard(page, goodwill="")
    assert page.inner_text("#preview-orders") == "4"
    job_id = _job_id(page)
    _execute(page)
    assert page.inner_text("#percent") == "0 %"
    assert services.run(job_id) == "done"
    page.click("#refresh a")
    page.wait_for_load_state()
    assert page.inner_text("#percent") == "100 %" and page.inner_text("#count-cancelled .n") == "3"
    assert page.locator("#refresh").count() == 0


@requires_postgres
def test_the_bar_moves_while_a_worker_runs_the_job(browser_page, leak, support, settings):
    """A worker in another thread, slowed down to one order a chunk: the page shows a value
    between 0 and 100 % on its way, then 100 %, without a reload (PostgreSQL: SQLite's shared
    in-memory database refuses a read while another thread writes)."""
    import threading

    from django.db import connection

    settings.REMEDIATION_CHUNK, settings.REMEDIATION_CHUNK_PAUSE = 1, 0.7
    page = browser_page
    browser_login(page, "support@warenhaus.example", next_path="/console/remediation/new/")
    page.wait_for_url(re.compile(r"/console/remediation/new/$"))
    _fill_wizard(page, goodwill="")
    job_id = _job_id(page)
    _execute(page)
    page.evaluate("window.notReloaded = true")
    outcome = {}

    def work():
        try:
            outcome["state"] = services.run(job_id)
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        page.wait_for_function(
            "() => { const p = parseInt(document.querySelector('#percent').innerText); return p > 0 && p < 100; }"
        )
        page.wait_for_function(
            "document.querySelector('#percent').innerText.trim() === '100 %'", timeout=20_000
        )
    finally:
        worker.join(30)
    assert outcome["state"] == "done" and page.evaluate("window.notReloaded") is True
    assert page.inner_text("#count-cancelled .n") == "3"
