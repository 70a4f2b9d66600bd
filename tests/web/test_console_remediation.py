"""The remediation console: who may see and execute, that a preview changes nothing, that bad
input reads as a sentence next to the form and changes nothing, and the job's live progress
and CSV export."""

from __future__ import annotations

import re

import pytest
from django_tasks_db.models import DBTaskResult

from tests.notifications.conftest import run_worker
from tests.promotions.conftest import approver, author, make_campaign  # noqa: F401  (fixtures)
from tests.remediation.conftest import buy  # noqa: F401  (a fixture)
from warenhaus.orders.models import Order
from warenhaus.remediation import services
from warenhaus.remediation.models import Item, Job

from .test_console_promotions import staff  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db

PREVIEWERS = ["support", "risk", "promotions", "promotions_approver"]


@pytest.fixture
def support(staff):
    return staff("support", email="support@warenhaus.example")


@pytest.fixture
def colleague(staff):
    """A second support person: a job that gives goodwill vouchers is executed by someone other
    than who prepared it (four eyes)."""
    return staff("support", email="kollegin@warenhaus.example")


@pytest.fixture
def leak(make_campaign, buy, make_user, support):  # noqa: F811
    """A leaked public code: three unshipped orders of two customers, one shipped order, and an
    order with another campaign's code that must be spared."""
    from warenhaus.orders import services as orders

    campaign = make_campaign(
        public_code="LEAK400",
        discount_value="40.00",
        min_basket="100.00",
        budget="100000.00",
        total_limit=None,
        per_customer_limit=None,
    )
    make_campaign(public_code="ECHT10", discount_value="10.00", min_basket="30.00")
    max_ = make_user(email="max@example.de", name="Max")
    leaked = [
        buy(code="LEAK400", email="erika@example.de"),
        buy(code="LEAK400", email="erika@example.de"),
        buy(code="LEAK400", email="max@example.de", user=max_, name="Max Muster"),
    ]
    shipped = buy(code="LEAK400", email="jo@example.de", name="Jo")
    orders.ship(number=shipped.number, actor=support)
    genuine = buy(code="ECHT10", email="gina@example.de", name="Gina")
    return {"campaign": campaign, "leaked": leaked, "shipped": shipped, "genuine": genuine}


WIZARD = {
    "voucher_codes": "LEAK400",
    "action": "cancel",
    "notify": "on",
    "goodwill_amount": "10,00",
    "reason": "Leck: Code nie freigegeben",
    "customer_note": "Der Code war nicht freigegeben.",
}


def _statuses():
    return dict(Order.objects.values_list("number", "status"))


def _preview(client, **fields):
    return client.post("/console/remediation/new/", {**WIZARD, **fields})


def _job(actor, **kw):
    kw.setdefault("selector", {"voucher_codes": ["LEAK400"]})
    kw.setdefault("actions", ["cancel", "notify", {"goodwill_voucher": {"amount": "10.00"}}])
    return services.create_job(actor=actor, reason="Leck", **kw)


def _pages(job):
    return [
        "/console/remediation/",
        "/console/remediation/new/",
        f"/console/remediation/{job.pk}/",
        f"/console/remediation/{job.pk}/progress/",
        f"/console/remediation/{job.pk}/export.csv",
    ]


# --- who may enter -------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(client, leak, support):
    job = _job(support)
    for path in _pages(job):
        r = client.get(path)
        assert r.status_code == 302 and r["Location"].startswith(f"/account/login/?next={path}"), (
            path
        )
    r = client.post(f"/console/remediation/{job.pk}/execute/", {"confirm": "yes"})
    assert r.status_code == 302 and "/account/login/" in r["Location"]
    assert Job.objects.get(pk=job.pk).state == "preview"


@pytest.mark.parametrize("role", ["catalog", "pricing"])
def test_catalog_and_pricing_get_403_everywhere(login_client, staff, leak, support, role):
    job = _job(support)
    c = login_client(staff(role))
    for path in _pages(job):
        assert c.get(path).status_code == 403, path
    assert _preview(c).status_code == 403
    assert c.post(f"/console/remediation/{job.pk}/execute/", {"confirm": "yes"}).status_code == 403
    assert Job.objects.count() == 1 and Job.objects.get(pk=job.pk).state == "preview"
    assert "/console/remediation/" not in c.get("/console/").content.decode()


@pytest.mark.parametrize("role", PREVIEWERS)
def test_every_previewing_role_sees_every_page(login_client, staff, leak, support, role):
    job = _job(support)
    c = login_client(staff(role))
    for path in _pages(job):
        assert c.get(path).status_code == 200, path
    assert 'href="/console/remediation/"' in c.get("/console/").content.decode()  # the navigation
    assert c.get("/console/remediation/new/?campaign=abc").status_code == 200


def test_unknown_job_is_404(login_client, support):
    c = login_client(support)
    assert c.get("/console/remediation/999999/").status_code == 404
    assert c.post("/console/remediation/999999/execute/", {"confirm": "yes"}).status_code == 404


# --- preview -------------------------------------------------------------------------------------


def test_the_preview_shows_the_numbers_and_changes_no_order(login_client, leak, support, colleague):
    before = _statuses()
    c = login_client(support)
    r = _preview(c)
    assert r.status_code == 302
    job = Job.objects.get()
    assert r["Location"] == f"/console/remediation/{job.pk}/"
    assert job.state == "preview" and job.created_by == support and job.reason == WIZARD["reason"]
    assert job.actions == {
        "cancel": True,
        "hold": False,
        "notify": True,
        "goodwill_amount": "10.00",
    }
    assert (
        _statuses() == before
        and not Item.objects.exists()
        and not DBTaskResult.objects.filter(task_path__contains="remediation").exists()
    )
    html = c.get(r["Location"]).content.decode()
    assert re.search(r'id="preview-orders">4<', html) and re.search(
        r'id="preview-customers">3<', html
    )
    assert re.search(r'id="preview-out-of-reach">1<', html) and re.search(
        r'id="preview-unshipped">3<', html
    )
    assert (
        'id="preview-discount">160,00 €<' in html and "20,00 €" in html
    )  # discounts, goodwill at most
    for o in [*leak["leaked"], leak["shipped"]]:
        assert o.number in html
    assert leak["genuine"].number not in html
    assert "LEAK400" not in html  # the code is shown by its hint only
    html = login_client(colleague).get(f"/en/console/remediation/{job.pk}/").content.decode()
    assert 'id="execute-button"' in html and 'id="confirm"' in html
    assert "cancel 3 orders, notify 2 customers and issue 2 vouchers of €10.00" in html


def test_the_wizard_by_sku_below_a_price_and_by_order_numbers_in_a_window(
    login_client, support, buy, make_product
):  # noqa: F811
    laptop = make_product(price="29.99", on_hand=100, sku="LAP-15")
    typo = [buy(product=laptop, email=f"k{i}@example.de") for i in range(2)]
    c = login_client(support)
    r = c.post(
        "/console/remediation/new/",
        {
            "sku": "LAP-15",
            "unit_price_below": "1.000,00",
            "action": "hold",
            "reason": "Preisfehler",
        },
    )
    job = Job.objects.get()
    assert (
        r.status_code == 302
        and job.selector == {"sku": "LAP-15", "unit_price_below": "1000.00"}
        and job.preview["orders"] == 2
    )
    r = c.post(
        "/console/remediation/new/",
        {
            "order_numbers": f"{typo[0].number}\n\n {typo[1].number} \nWH-NOTHERE",
            "placed_from": "2020-01-01T00:00",
            "placed_to": "2999-12-31T23:59",
            "action": "",
            "notify": "on",
            "reason": "Nachricht",
        },
    )
    job = Job.objects.latest("pk")
    assert (
        job.selector["placed_from"] == "2020-01-01T00:00:00+01:00"
    )  # Berlin time, with its offset
    assert job.preview["orders"] == 2 and job.preview["not_found"] == ["WH-NOTHERE"]
    html = c.get(r["Location"]).content.decode()
    assert 'id="not-found"' in html and "WH-NOTHERE" in html


def test_a_campaign_can_be_preselected(login_client, leak, support):
    c = login_client(support)
    html = c.get(f"/console/remediation/new/?campaign={leak['campaign'].pk}").content.decode()
    assert re.search(rf'<option value="{leak["campaign"].pk}" selected>', html)
    r = _preview(c, voucher_codes="", campaign=str(leak["campaign"].pk))
    assert r.status_code == 302 and Job.objects.get().preview["orders"] == 4


@pytest.mark.parametrize("role", ["support", "promotions"])
def test_the_campaign_page_links_to_the_wizard_with_the_campaign(login_client, staff, leak, role):
    c = login_client(staff(role))
    html = c.get(f"/console/promotions/{leak['campaign'].pk}/").content.decode()
    assert (
        f'href="/console/remediation/new/?campaign={leak["campaign"].pk}"' in html
        and 'id="remediation-link"' in html
    )


def test_a_double_submit_of_the_wizard_makes_one_job(login_client, leak, support):
    c = login_client(support)
    token = re.search(
        r'name="token" value="([0-9a-f]+)"', c.get("/console/remediation/new/").content.decode()
    ).group(1)
    first, second = _preview(c, token=token), _preview(c, token=token)
    assert first["Location"] == second["Location"] and Job.objects.count() == 1
    # back in the browser, the form changed and sent again: that is a new preview
    third = _preview(c, token=token, action="hold")
    assert (
        third.status_code == 302
        and third["Location"] != first["Location"]
        and Job.objects.count() == 2
    )


@pytest.mark.parametrize(
    "fields, field, text",
    [
        (
            {"voucher_codes": "LEAK400\nGIBTSNICHT1"},
            "voucher_codes",
            "“GIBTSNICHT1” is not a voucher code of this shop",
        ),
        ({"voucher_codes": ""}, None, "Please choose the orders in one way only"),
        ({"order_numbers": "WH-1"}, None, "Please choose the orders in one way only"),
        (
            {"voucher_codes": "", "sku": "LAP-15"},
            "unit_price_below",
            "Give the unit price below which a sale was a mistake",
        ),
        (
            {"voucher_codes": "", "unit_price_below": "100"},
            "sku",
            "Give the SKU whose price was wrong",
        ),
        (
            {"voucher_codes": "", "sku": "LAP-15", "unit_price_below": "billig"},
            "unit_price_below",
            "valid amount",
        ),
        ({"goodwill_amount": "5000"}, "goodwill_amount", "A goodwill voucher is at most €100.00."),
        ({"goodwill_amount": "zehn"}, "goodwill_amount", "valid amount"),
        ({"action": "", "notify": "", "goodwill_amount": ""}, "action", "Please choose what to do"),
        ({"reason": "  "}, "reason", "Please give a reason"),
        (
            {"placed_from": "2026-11-22T20:00", "placed_to": "2026-11-22T18:00"},
            "placed_to",
            "“Placed until” is before “placed from”.",
        ),
        ({"placed_from": "gestern"}, "placed_from", "Enter a valid date/time."),
        ({"campaign": "999999"}, "campaign", "Select a valid choice"),
    ],
)
def test_bad_input_reads_as_a_sentence_keeps_the_form_and_changes_nothing(
    login_client, leak, support, fields, field, text
):
    before = _statuses()
    c = login_client(support)
    r = c.post("/en/console/remediation/new/", {**WIZARD, **fields})
    html = r.content.decode()
    assert 400 <= r.status_code < 500 and 'id="error"' in html
    assert text in html.replace("&quot;", '"')
    if field:  # the sentence is next to its field too
        assert re.search(rf'id="id_{field}".*?<ul class="errorlist">', html, re.S) or re.search(
            rf'name="{field}".*?errorlist', html, re.S
        )
    assert "Der Code war nicht freigegeben." in html  # what was typed stays
    assert not Job.objects.exists() and _statuses() == before


def test_refusals_read_in_german_on_the_german_pages(login_client, leak, support):
    c = login_client(support)
    html = _preview(c, voucher_codes="LEAK400\nGIBTSNICHT1").content.decode()
    assert "„GIBTSNICHT1“ ist kein Gutscheincode dieses Shops." in html
    html = _preview(c, goodwill_amount="5000").content.decode()
    assert "höchstens 100,00 €" in html
    assert not Job.objects.exists()
    assert ">Bereinigung</a>" in c.get("/console/").content.decode()


def test_a_fixed_form_after_an_error_goes_through(login_client, leak, support):
    c = login_client(support)
    r = _preview(c, voucher_codes="NOPE", token="t1")
    assert r.status_code == 422
    token = re.search(r'name="token" value="([0-9a-f]+)"', r.content.decode()).group(1)
    assert token != "t1"  # a fresh token: the corrected form is a new request
    assert _preview(c, token=token).status_code == 302 and Job.objects.count() == 1


# --- execute ---------------------------------------------------------------------------------------


def test_support_executes_the_job_is_queued_and_runs_to_100_percent(
    login_client, leak, support, colleague
):
    job = Job.objects.get(
        pk=int(_preview(login_client(support))["Location"].rstrip("/").split("/")[-1])
    )
    c = login_client(colleague)
    r = c.post(f"/console/remediation/{job.pk}/execute/", {"confirm": "yes"})
    assert r.status_code == 302 and r["Location"] == f"/console/remediation/{job.pk}/"
    job.refresh_from_db()
    assert job.state == "queued" and job.executed_by == colleague and job.total == 4
    assert (
        DBTaskResult.objects.filter(task_path__contains="remediation", status="READY").count() == 1
    )
    html = c.get(r["Location"]).content.decode()
    assert (
        'hx-trigger="every 1s"' in html
        and 'id="refresh"' in html
        and '<meta http-equiv="refresh"' in html
    )
    assert 'id="execute-button"' not in html and 'id="goodwill-campaign"' in html
    assert f"/console/promotions/{job.goodwill_campaign_id}/" in html
    run_worker()
    fragment = c.get(f"/console/remediation/{job.pk}/progress/").content.decode()
    assert (
        'value="100"' in fragment and "100 %" in fragment and "hx-trigger" not in fragment
    )  # polling stops
    assert re.search(r'id="count-cancelled">.*?<div class="n">3<', fragment, re.S)
    assert re.search(r'id="count-out_of_reach">.*?<div class="n">1<', fragment, re.S)
    assert re.search(r'id="count-vouchers_issued">.*?<div class="n">2<', fragment, re.S)
    statuses = _statuses()
    assert all(statuses[o.number] == "cancelled" for o in leak["leaked"])
    assert (
        statuses[leak["shipped"].number] == "shipped"
        and statuses[leak["genuine"].number] != "cancelled"
    )
    html = c.get(f"/console/remediation/{job.pk}/").content.decode()
    assert '<meta http-equiv="refresh"' not in html and 'id="csv-link"' in html
    # executing again (a double submit) changes nothing
    before = (_statuses(), DBTaskResult.objects.count())
    r = c.post(f"/console/remediation/{job.pk}/execute/", {"confirm": "yes"}, follow=True)
    assert r.status_code == 200 and (_statuses(), DBTaskResult.objects.count()) == before


def test_who_prepared_a_goodwill_job_cannot_execute_it(login_client, leak, support):
    job = _job(support)
    c = login_client(support)
    html = c.get(f"/en/console/remediation/{job.pk}/").content.decode()
    assert (
        'id="execute-button"' not in html
        and 'id="four-eyes"' in html
        and "another support or risk colleague must execute it" in html
    )
    r = c.post(f"/en/console/remediation/{job.pk}/execute/", {"confirm": "yes"})
    assert (
        r.status_code == 403
        and 'id="error"' in r.content.decode()
        and "(four eyes)" in r.content.decode()
    )
    assert Job.objects.get(pk=job.pk).state == "preview" and not Item.objects.exists()
    # without goodwill vouchers the preparer may execute
    plain = _job(support, actions=["cancel", "notify"])
    assert 'id="execute-button"' in c.get(f"/console/remediation/{plain.pk}/").content.decode()


def test_an_outdated_preview_is_refused_and_shown_afresh(
    login_client, leak, support, colleague, buy
):  # noqa: F811
    job = _job(support)
    buy(code="LEAK400", email="neu@example.de", name="Neu")  # the leak goes on after the preview
    r = login_client(colleague).post(
        f"/en/console/remediation/{job.pk}/execute/", {"confirm": "yes"}
    )
    html = r.content.decode()
    assert r.status_code == 409 and "The preview has been updated" in html
    assert re.search(r'id="preview-orders">5<', html) and "notify 3 customers" in html
    assert Job.objects.get(pk=job.pk).state == "preview" and not Item.objects.exists()


def test_execute_needs_the_confirmation(login_client, leak, support):
    job = _job(support)
    r = login_client(support).post(f"/en/console/remediation/{job.pk}/execute/")
    assert r.status_code == 422 and "Please tick the box" in r.content.decode()
    assert Job.objects.get(pk=job.pk).state == "preview" and not Item.objects.exists()


def test_promotions_may_preview_but_not_execute(login_client, staff, leak):
    c = login_client(staff("promotions"))
    r = _preview(c)
    assert r.status_code == 302
    job = Job.objects.get()
    html = c.get(r["Location"]).content.decode()
    assert 'id="execute-button"' not in html and 'id="may-not-run"' in html
    assert c.post(f"/console/remediation/{job.pk}/execute/", {"confirm": "yes"}).status_code == 403
    assert Job.objects.get().state == "preview" and not Item.objects.exists()


def test_a_failed_job_shows_its_error_and_can_be_resumed(
    login_client, leak, support, settings, monkeypatch
):
    from warenhaus.orders import services as orders

    settings.REMEDIATION_MAX_ATTEMPTS = 1
    job = _job(support, dry_run=False, actions=["cancel"])
    monkeypatch.setattr(
        orders,
        "act_on_many",
        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("database says no")),
    )
    assert services.run(job.pk) == "failed"
    c = login_client(support)
    html = c.get(f"/en/console/remediation/{job.pk}/").content.decode()
    assert (
        'id="last-error"' in html
        and "database says no" in html
        and "Execute again to resume" in html
    )
    assert "hx-trigger" not in html
    r = c.post(f"/console/remediation/{job.pk}/execute/")
    assert r.status_code == 302 and Job.objects.get(pk=job.pk).state == "queued"


# --- list, CSV, entry points ---------------------------------------------------------------------


def test_the_jobs_list_shows_state_people_counts_and_progress(login_client, leak, support):
    preview = _job(support)
    running = _job(support, dry_run=False, actions=["cancel", "notify"])
    c = login_client(support)
    html = c.get("/en/console/remediation/").content.decode()
    assert (
        f'href="/en/console/remediation/{preview.pk}/"' in html
        and f'href="/en/console/remediation/{running.pk}/"' in html
    )
    assert "support@warenhaus.example" in html and "not executed" in html and "<progress" in html
    html = c.get("/en/console/remediation/?state=queued").content.decode()
    assert f'id="job-{running.pk}"' in html and f'id="job-{preview.pk}"' not in html


def test_the_csv_lists_every_order_with_its_outcome(login_client, leak, support, colleague):
    job = _job(support, actions=["cancel", "notify", {"goodwill_voucher": {"amount": "5.00"}}])
    services.execute(job_id=job.pk, actor=colleague)
    run_worker()
    r = login_client(support).get(f"/console/remediation/{job.pk}/export.csv")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    assert f"remediation-{job.pk}.csv" in r["Content-Disposition"]
    lines = b"".join(r.streaming_content).decode().strip().splitlines()
    assert lines[0].startswith("order,placed_at,customer") and len(lines) == 5
    assert (
        sum(",cancelled," in line for line in lines) == 3
        and sum(",out_of_reach," in line for line in lines) == 1
    )
    assert all(
        "…" in line.split(",")[-1] for line in lines if ",cancelled," in line
    )  # goodwill codes by their hints


def test_english_pages_are_english(login_client, leak, support):
    c = login_client(support)
    html = c.get("/en/console/remediation/new/").content.decode()
    assert "Step 1: which orders" in html and "Show preview" in html
