"""The promotions console: who may see and do what, that every action is audited, and that
refusals (four eyes, dangerous shapes, a live campaign) read as sentences in both languages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from warenhaus.core.clock import now
from warenhaus.core.models import AuditEntry
from warenhaus.promotions import services
from warenhaus.promotions.models import Alert, BlockRule, Campaign, Code

pytestmark = pytest.mark.django_db

SAFE = {
    "discount_kind": "fixed",
    "discount_value": "10.00",
    "min_basket": "30.00",
    "budget": "1000.00",
    "total_limit": 100,
}


@pytest.fixture
def staff(make_user):
    def make(*roles, **kw):
        return make_user(roles=list(roles), **kw)

    return make


@pytest.fixture
def author(staff):
    return staff("promotions")


@pytest.fixture
def approver(staff):
    return staff("promotions_approver")


@pytest.fixture
def campaign(author, approver):
    def make(*, approve=True, public_code="", **fields):
        body = {**SAFE, "name": "Sommeraktion", "valid_until": now() + timedelta(days=30), **fields}
        c = services.create_campaign(
            actor=author,
            code_mode="public" if public_code else "unique",
            public_code=public_code,
            **body,
        )
        if approve:
            c = services.approve_campaign(campaign_id=c.pk, actor=approver)
        return c

    return make


def _alert(c, **kw):
    at = now()
    fields = {
        "monitor": "rate",
        "measured": 60.0,
        "threshold": 10.0,
        "peak": 60.0,
        "window_seconds": 60,
        "message": "60 redemptions in the last 60 s; at most 10 expected.",
        "created_at": at,
        "last_seen_at": at,
        **kw,
    }
    return Alert.objects.create(campaign=c, **fields)


def _pages(c, alert):
    return [
        ("/console/promotions/", "promotions.view"),
        (f"/console/promotions/{c.pk}/", "promotions.view"),
        ("/console/promotions/alerts/", "promotions.view"),
        ("/console/promotions/new/", "promotions.edit"),
        ("/console/promotions/kill-switch/", "promotions.block"),
        (f"/console/promotions/{c.pk}/approve/", "promotions.approve"),
    ]


@pytest.mark.parametrize(
    "role", ["promotions", "promotions_approver", "risk", "support", "catalog", "pricing", "admin"]
)
def test_each_page_for_each_role(login_client, staff, campaign, role):
    from warenhaus.accounts.roles import CAPABILITIES

    c = campaign(approve=False)
    alert = _alert(c)
    client = login_client(staff(role))
    for path, capability in _pages(c, alert):
        r = client.get(path)
        allowed = role == "admin" or role in CAPABILITIES[capability]
        assert r.status_code == (200 if allowed else 403), (role, path, r.status_code)
    nav = client.get("/console/").content.decode()
    assert ("/console/promotions/" in nav) == (
        role == "admin" or role in CAPABILITIES["promotions.view"]
    )


def test_anonymous_and_shoppers_stay_out(client, login_client, shopper, campaign):
    c = campaign()
    r = client.get(f"/console/promotions/{c.pk}/")
    assert r.status_code == 302 and "/account/login/" in r["Location"]
    r = login_client(shopper).post(f"/console/promotions/{c.pk}/pause/", {"reason": "x"})
    assert r.status_code == 403 and Campaign.objects.get(pk=c.pk).status == "approved"


def test_navigation_names_promotions_in_both_languages(login_client, author):
    client = login_client(author)
    assert ">Aktionen</a>" in client.get("/console/").content.decode()
    assert ">Promotions</a>" in client.get("/en/console/").content.decode()


def test_list_filters_and_shows_counters_and_badges(login_client, author, campaign):
    live = campaign(name="Läuft")
    draft = campaign(name="Entwurf A", approve=False)
    _alert(live)
    client = login_client(author)
    html = client.get("/console/promotions/").content.decode()
    row = re.search(rf'<tr id="campaign-{live.pk}">.*?</tr>', html, re.S).group(0)
    assert "0 / 100" in row and "1 Alarm" in row and "freigegeben" in row and "1.000,00" in row
    html = client.get("/console/promotions/", {"status": "draft"}).content.decode()
    assert "Entwurf A" in html and "Läuft" not in html
    assert str(draft.pk) in html
    assert client.get("/console/promotions/", {"status": "kaputt"}).status_code == 400


def test_create_a_campaign_through_the_form(login_client, author):
    client = login_client(author)
    r = client.post(
        "/console/promotions/new/",
        {
            "name": "Herbst",
            "discount_kind": "fixed",
            "discount_value": "5,00",
            "min_basket": "25,00",
            "max_share": "50",
            "customer_eligibility": "any",
            "channels": ["web", "api"],
            "valid_until": "2099-12-31T23:59",
            "total_limit": "100",
            "budget": "500,00",
            "stacking": "exclusive",
            "code_mode": "public",
            "public_code": "HERBST25",
            "release_redemption_on_cancel": "on",
            "expected_redemptions_per_hour": "120",
            "auto_pause": "on",
        },
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    c = Campaign.objects.get(name="Herbst")
    assert r["Location"] == f"/console/promotions/{c.pk}/"
    assert (
        str(c.discount_value) == "5.00"
        and c.channels == ["web", "api"]
        and c.status == "draft"
        and c.created_by == author
    )
    assert AuditEntry.objects.filter(
        action="campaign.create", source="console", actor_email=author.email
    ).exists()
    html = client.get(r["Location"]).content.decode()
    assert "…T25" in html and "HERBST25" not in html


def test_a_refused_form_keeps_the_input_and_names_the_problem(login_client, author):
    client = login_client(author)
    body = {
        "name": "Falsch",
        "discount_kind": "percent",
        "discount_value": "150",
        "customer_eligibility": "any",
        "channels": ["web"],
        "stacking": "exclusive",
        "code_mode": "unique",
    }
    r = client.post("/console/promotions/new/", body)
    assert r.status_code == 422 and "Falsch" in r.content.decode() and not Campaign.objects.exists()
    r = client.post(
        "/en/console/promotions/new/",
        {**body, "discount_kind": "fixed", "discount_value": "5", "public_code": "NICHTHIER"},
    )
    assert r.status_code == 422 and "Please check the field" in r.content.decode()


def test_edit_a_draft_and_not_a_live_campaign(login_client, author, campaign):
    draft = campaign(approve=False)
    client = login_client(author)
    page = client.get(f"/console/promotions/{draft.pk}/edit/").content.decode()
    assert 'value="Sommeraktion"' in page and 'value="10.00"' in page
    form = {
        "name": "Sommer neu",
        "discount_kind": "fixed",
        "discount_value": "15",
        "min_basket": "40",
        "customer_eligibility": "any",
        "channels": ["web"],
        "valid_until": "2099-01-01T00:00",
        "total_limit": "50",
        "budget": "750",
        "stacking": "exclusive",
        "code_mode": "unique",
        "auto_pause": "on",
    }
    r = client.post(f"/console/promotions/{draft.pk}/edit/", form)
    assert r.status_code == 302
    draft.refresh_from_db()
    assert (
        draft.name == "Sommer neu"
        and str(draft.discount_value) == "15.00"
        and draft.total_limit == 50
    )
    entry = AuditEntry.objects.get(action="campaign.edit")
    assert (
        entry.source == "console"
        and entry.before["total_limit"] == 100
        and entry.after["total_limit"] == 50
    )
    live = campaign()
    r = client.get(f"/console/promotions/{live.pk}/edit/")
    assert r.status_code == 409 and "Nur ein Entwurf kann bearbeitet werden" in r.content.decode()
    r = client.post(f"/console/promotions/{live.pk}/edit/", form)
    assert r.status_code == 409 and Campaign.objects.get(pk=live.pk).name == "Sommeraktion"


def test_approval_shows_worst_case_and_dangers_and_needs_a_reason(login_client, approver, campaign):
    c = campaign(
        approve=False, discount_value="400.00", min_basket="401.00", budget=None, total_limit=None
    )
    client = login_client(approver)
    html = client.get(f"/console/promotions/{c.pk}/approve/").content.decode()
    assert (
        "unbegrenzt" in html
        and 'id="dangers"' in html
        and "Weder ein Gesamtlimit" in html
        and 'name="override_reason"' in html
    )
    assert "mehr als 50 % des Mindestbestellwerts" in html
    r = client.post(f"/console/promotions/{c.pk}/approve/", {"override_reason": ""})
    assert r.status_code == 409 and "gefährliche Form" in r.content.decode()
    assert Campaign.objects.get(pk=c.pk).status == "draft"
    r = client.post(
        f"/console/promotions/{c.pk}/approve/",
        {"override_reason": "Aktion für Mitarbeiter, intern"},
    )
    assert r.status_code == 302
    c.refresh_from_db()
    assert (
        c.status == "approved"
        and c.approved_by == approver
        and c.approval_override_reason == "Aktion für Mitarbeiter, intern"
    )
    assert AuditEntry.objects.filter(action="campaign.approve", source="console").exists()
    safe = campaign(approve=False)
    html = client.get(f"/console/promotions/{safe.pk}/approve/").content.decode()
    assert "1.000,00" in html and 'id="dangers"' not in html


def test_four_eyes_refusal_is_a_readable_message(login_client, staff, campaign, author):
    """Whoever made or edited a draft is refused, the author too after a colleague's edit."""
    both = staff("promotions", "promotions_approver")
    from warenhaus.promotions import editing

    c = campaign(approve=False)
    editing.update_campaign(campaign_id=c.pk, actor=both, changes={"name": "Selbst gemacht"})
    client = login_client(both)
    html = client.get(f"/console/promotions/{c.pk}/approve/").content.decode()
    assert (
        "Freigeben muss sie jemand, der beides nicht getan hat" in html
        and 'id="approve-form"' not in html
    )
    assert f"Bearbeitet von {both.email}." in html
    r = client.post(f"/console/promotions/{c.pk}/approve/", {"override_reason": ""})
    assert (
        r.status_code == 403
        and "Freigeben muss sie jemand, der beides nicht getan hat (Vier-Augen-Prinzip)"
        in r.content.decode()
    )
    r = client.post(f"/en/console/promotions/{c.pk}/approve/", {"override_reason": ""})
    assert (
        "You made or edited this campaign. Someone who did neither must approve it (four eyes)."
        in r.content.decode()
    )
    assert f"Edited by {both.email}." in r.content.decode()
    assert Campaign.objects.get(pk=c.pk).status == "draft"
    assert (
        both.email
        in client.get(f"/en/console/promotions/{c.pk}/")
        .content.decode()
        .split("Edited as a draft by")[1][:200]
    )


def test_the_author_is_refused_after_a_colleague_edited_the_draft(login_client, staff):
    from warenhaus.promotions import editing, services

    both, colleague = staff("promotions", "promotions_approver"), staff("promotions")
    c = services.create_campaign(
        actor=both,
        name="Mitarbeiterrabatt",
        discount_kind="fixed",
        discount_value="400.00",
        code_mode="unique",
        total_limit=10,
        valid_until="2099-01-01T00:00:00+00:00",
    )
    editing.update_campaign(campaign_id=c.pk, actor=colleague, changes={"purpose": "Sommerfest"})
    client = login_client(both)
    assert 'id="four-eyes"' in client.get(f"/console/promotions/{c.pk}/approve/").content.decode()
    r = client.post(f"/en/console/promotions/{c.pk}/approve/", {"override_reason": "passt schon"})
    assert r.status_code == 403 and "Someone who did neither must approve it" in r.content.decode()
    assert Campaign.objects.get(pk=c.pk).status == "draft"


def test_pause_resume_revoke_and_block_a_code(login_client, staff, approver, campaign):
    c = campaign(public_code="SOMMER10")
    risk = login_client(staff("risk"))
    r = risk.post(f"/console/promotions/{c.pk}/pause/", {"reason": ""})
    assert r.status_code == 422 and "Bitte geben Sie einen Grund an" in r.content.decode()
    assert (
        risk.post(f"/console/promotions/{c.pk}/pause/", {"reason": "Leck auf Twitter"}).status_code
        == 302
    )
    assert Campaign.objects.get(pk=c.pk).status == "paused"
    assert (
        risk.post(f"/console/promotions/{c.pk}/resume/", {}).status_code == 403
    )  # risk may not resume
    r = risk.post(
        f"/console/promotions/{c.pk}/block-code/", {"code": "sommer-10", "reason": "geleakt"}
    )
    assert r.status_code == 302 and Code.objects.get(campaign=c).status == "blocked"
    r = risk.post(f"/console/promotions/{c.pk}/block-code/", {"code": "GIBTESNICHT", "reason": "x"})
    assert r.status_code == 404 and "gehört nicht zu dieser Aktion" in r.content.decode()
    other = campaign(public_code="ANDERE10")
    r = risk.post(f"/console/promotions/{c.pk}/block-code/", {"code": "ANDERE10", "reason": "x"})
    assert r.status_code == 404 and Code.objects.get(campaign=other).status == "active"
    client = login_client(approver)
    assert (
        client.post(f"/console/promotions/{c.pk}/resume/", {"reason": "geprüft"}).status_code == 302
    )
    assert client.post(f"/console/promotions/{c.pk}/revoke/", {"reason": "Ende"}).status_code == 302
    r = client.post(f"/console/promotions/{c.pk}/pause/", {"reason": "noch mal"})
    assert r.status_code == 409 and "widerrufen" in r.content.decode()
    actions = set(AuditEntry.objects.filter(source="console").values_list("action", flat=True))
    assert {"campaign.pause", "campaign.resume", "campaign.revoke", "code.block"} <= actions
    assert client.post(f"/console/promotions/{c.pk}/explode/", {}).status_code == 404


def test_generated_codes_are_shown_once(login_client, author, campaign):
    c = campaign()
    client = login_client(author)
    r = client.post(f"/console/promotions/{c.pk}/codes/", {"count": "3"})
    assert r.status_code == 201 and r["Cache-Control"] == "no-store"
    shown = (
        re.search(r'<textarea id="new-codes"[^>]*>(.*?)</textarea>', r.content.decode(), re.S)
        .group(1)
        .split()
    )
    assert len(shown) == 3 and all(
        re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", x) for x in shown
    )
    detail = client.get(f"/console/promotions/{c.pk}/").content.decode()
    assert all(x not in detail for x in shown) and Code.objects.filter(campaign=c).count() == 3
    r = client.post(f"/console/promotions/{c.pk}/codes/", {"count": "0"})
    assert r.status_code == 422 and "zwischen 1 und" in r.content.decode()


def test_detail_chart_draws_the_rate_threshold(login_client, author, campaign):
    c = campaign(expected_redemptions_per_hour=600, monitor_settings={"rate": {"factor": 2}})
    html = login_client(author).get(f"/console/promotions/{c.pk}/").content.decode()
    # 600 an hour = 10 a minute, x 2 = 20 a minute
    assert 'id="threshold-line"' in html and "Schwelle des Raten-Monitors: 20 pro Minute" in html
    assert 'id="expected-line"' in html and 'id="redemption-chart"' in html


def test_alerts_page_in_german_and_english_and_acknowledge(login_client, staff, campaign):
    c = campaign()
    alert = _alert(c)
    _alert(c, monitor="new_share", measured=0.95, threshold=0.8, window_seconds=600, message="x")
    support = login_client(staff("support"))
    html = support.get("/console/promotions/alerts/").content.decode()
    assert "60 Einlösungen in den letzten 60 s; höchstens 10 erwartet." in html and "95 %" in html
    assert "Bestätigen" not in html  # support may look, not acknowledge
    assert support.post(f"/console/promotions/alerts/{alert.pk}/acknowledge/").status_code == 403
    risk = login_client(staff("risk"))
    html = risk.get("/en/console/promotions/alerts/").content.decode()
    assert "60 redemptions in the last 60 s; at most 10 expected." in html and "Acknowledge" in html
    r = risk.post(f"/console/promotions/alerts/{alert.pk}/acknowledge/", {"next": "alerts"})
    assert r.status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None
    assert AuditEntry.objects.filter(action="alert.acknowledge", source="console").count() == 1
    assert f'id="alert-{alert.pk}"' not in risk.get("/console/promotions/alerts/").content.decode()
    assert (
        f'id="alert-{alert.pk}"' in risk.get("/console/promotions/alerts/?all=1").content.decode()
    )
    assert risk.post("/console/promotions/alerts/999999/acknowledge/").status_code == 404


def test_kill_switch_blocks_a_pattern(login_client, staff, campaign):
    c = campaign(public_code="SOMMER10")
    client = login_client(staff("promotions_approver"))
    r = client.post("/console/promotions/kill-switch/", {"pattern": "SOM", "reason": "Leck"})
    assert r.status_code == 422 and "mindestens 4 Buchstaben" in r.content.decode()
    r = client.post("/console/promotions/kill-switch/", {"pattern": "sommer*", "reason": "Leck"})
    assert r.status_code == 302
    assert (
        Code.objects.get(campaign=c).status == "blocked"
        and BlockRule.objects.get().pattern == "SOMMER*"
    )
    assert "SOMMER*" in client.get("/console/promotions/kill-switch/").content.decode()
    assert AuditEntry.objects.filter(action="code.block_pattern", source="console").exists()
