"""Editing a campaign: drafts only, the creation rules, audited before/after, the public code
kept in step, and four eyes on what is approved (nobody who edited it approves it)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from warenhaus.core.errors import Conflict, DomainError, Forbidden, ValidationFailed
from warenhaus.core.models import AuditEntry
from warenhaus.promotions import codes as codelib
from warenhaus.promotions import editing, services
from warenhaus.promotions.models import Campaign, Code


def test_a_draft_changes_and_the_audit_says_before_and_after(make_campaign, author):
    c = make_campaign(approve=False)
    editing.update_campaign(
        campaign_id=c.pk,
        actor=author,
        changes={"discount_value": "12.50", "purpose": "Sommer", "total_limit": 20},
    )
    c.refresh_from_db()
    assert (
        c.discount_value == Decimal("12.50")
        and c.purpose == "Sommer"
        and c.total_limit == 20
        and c.status == "draft"
    )
    entry = AuditEntry.objects.filter(action="campaign.edit").get()
    assert entry.before == {"discount_value": "10.00", "purpose": "", "total_limit": 100}
    assert entry.after == {"discount_value": "12.50", "purpose": "Sommer", "total_limit": 20}
    assert entry.actor_email == author.email and entry.object_id == str(c.pk)


def test_nothing_changed_writes_nothing(make_campaign, author):
    c = make_campaign(approve=False)
    editing.update_campaign(campaign_id=c.pk, actor=author, changes={"name": c.name})
    assert not AuditEntry.objects.filter(action="campaign.edit").exists()


@pytest.mark.parametrize("status", ["approved", "paused", "revoked"])
def test_only_a_draft_can_be_edited(make_campaign, author, approver, status):
    c = make_campaign()
    if status == "paused":
        services.pause_campaign(campaign_id=c.pk, actor=approver, reason="Leck")
    elif status == "revoked":
        services.revoke_campaign(campaign_id=c.pk, actor=approver, reason="Leck")
    with pytest.raises(Conflict) as err:
        editing.update_campaign(
            campaign_id=c.pk, actor=author, changes={"discount_value": "400.00"}
        )
    assert err.value.code == "campaign_not_editable" and err.value.extra["current_status"] == status
    assert Campaign.objects.get(pk=c.pk).discount_value == Decimal("10.00")


@pytest.mark.parametrize(
    "changes,code",
    [
        ({"name": ""}, "validation_error"),
        ({"discount_kind": "percent", "discount_value": "101"}, "validation_error"),
        ({"discount_value": "0"}, "invalid_money"),
        ({"max_share": "120"}, "validation_error"),
        ({"channels": ["web", "brief"]}, "validation_error"),
        ({"valid_until": "2001-01-01T00:00:00+00:00"}, "validation_error"),
        ({"per_customer_limit": -1}, "validation_error"),
        ({"auto_pause": "ja"}, "validation_error"),
        ({"monitor_settings": {"rate": {"factor": -1}}}, "validation_error"),
        ({"eligible_products": ["nirgends"]}, "product_not_found"),
        ({"status": "approved"}, "validation_error"),
        ({"created_by": 1}, "validation_error"),
    ],
)
def test_the_rules_of_creation_hold(make_campaign, author, changes, code):
    c = make_campaign(approve=False)
    with pytest.raises(DomainError) as err:
        editing.update_campaign(campaign_id=c.pk, actor=author, changes=changes)
    assert err.value.code == code
    fresh = Campaign.objects.get(pk=c.pk)
    assert (fresh.name, fresh.discount_value, fresh.status) == (c.name, c.discount_value, "draft")


def test_a_new_public_code_replaces_the_old_one(make_campaign, author):
    c = make_campaign(approve=False, public_code="SOMMER10")
    old = Code.objects.get(campaign=c)
    editing.update_campaign(campaign_id=c.pk, actor=author, changes={"public_code": "herbst-20"})
    row = Code.objects.get(campaign=c)
    assert row.pk == old.pk and row.digest == codelib.digest("HERBST20") and row.hint == "T20"
    assert not Code.objects.filter(digest=codelib.digest("SOMMER10")).exists()
    after = AuditEntry.objects.get(action="campaign.edit").after
    assert after == {"public_code_hint": "…T20", "previous_public_code_hint": "…R10"}
    assert "HERBST20" not in str(after)


def test_a_public_code_that_is_taken_is_refused(make_campaign, author):
    make_campaign(public_code="VERGEBEN")
    c = make_campaign(approve=False, public_code="FREI2026")
    with pytest.raises(Conflict) as err:
        editing.update_campaign(campaign_id=c.pk, actor=author, changes={"public_code": "VERGEBEN"})
    assert err.value.code == "code_taken"
    assert Code.objects.get(campaign=c).digest == codelib.digest("FREI2026")


def test_switching_code_mode(make_campaign, author):
    c = make_campaign(approve=False, public_code="WECHSEL1")
    editing.update_campaign(campaign_id=c.pk, actor=author, changes={"code_mode": "unique"})
    assert not Code.objects.filter(campaign=c).exists()
    with pytest.raises(ValidationFailed):
        editing.update_campaign(campaign_id=c.pk, actor=author, changes={"code_mode": "public"})
    services.generate_codes(campaign_id=c.pk, actor=author, count=2)
    with pytest.raises(Conflict) as err:
        editing.update_campaign(
            campaign_id=c.pk,
            actor=author,
            changes={"code_mode": "public", "public_code": "WECHSEL2"},
        )
    assert err.value.code == "campaign_has_codes"
    assert (
        Campaign.objects.get(pk=c.pk).code_mode == "unique"
        and Code.objects.filter(campaign=c).count() == 2
    )


def test_an_editor_cannot_approve_it_and_the_author_stays_the_author(
    make_campaign, make_user, author
):
    both = make_user(roles=["promotions", "promotions_approver"])
    c = make_campaign(approve=False)
    editing.update_campaign(
        campaign_id=c.pk, actor=both, changes={"discount_value": "400.00", "min_basket": "401.00"}
    )
    with pytest.raises(Forbidden) as err:
        services.approve_campaign(campaign_id=c.pk, actor=both, override_reason="passt schon")
    assert err.value.code == "four_eyes_required" and err.value.extra["took_part_as"] == "editor"
    c = Campaign.objects.get(pk=c.pk)
    assert c.created_by == author and c.status == "draft"
    assert [(s.user, s.role) for s in c.signoffs.order_by("pk")] == [
        (author, "author"),
        (both, "editor"),
    ]


def test_over_the_api(make_campaign, api_as, author, approver):
    c = make_campaign(approve=False)
    api = api_as(author)
    r = api.patch(f"/campaigns/{c.pk}", {"budget": None, "total_limit": 5, "valid_until": None})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["budget"] is None and body["total_limit"] == 5 and body["valid_until"] is None
    assert {d["code"] for d in body["dangers"]} == {"no_end_date"}
    assert api_as(approver).patch(f"/campaigns/{c.pk}", {"total_limit": 6}).status_code == 403
