"""The migration that brings four eyes into the database gives the campaigns made before it
their sign-offs, from the audit trail and the campaign rows, and pauses one that its approver
had made or edited (possible before: an edit made the editor the author)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

CORE = ("core", "0002_rate_counter")
BEFORE = [CORE, ("promotions", "0002_monitors"), ("remediation", "0001_initial")]
AFTER = [
    CORE,
    ("promotions", "0004_signoff_constraints"),
    ("remediation", "0002_goodwill_four_eyes"),
]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_campaigns_get_their_sign_offs_and_a_breach_is_paused():
    from warenhaus.core.clock import now

    old = _migrate(BEFORE)
    try:
        User, Campaign, AuditEntry, Job = (
            old.get_model(*m.split("."))
            for m in ("accounts.User", "promotions.Campaign", "core.AuditEntry", "remediation.Job")
        )
        anna, ben, cleo, dora = (
            User.objects.create(email=f"{n}@warenhaus.example", username=n, password="!")
            for n in ("anna", "ben", "cleo", "dora")
        )

        def campaign(name, *, made, created_by, approved_by=None, edits=(), status="draft"):
            c = Campaign.objects.create(
                name=name,
                discount_kind="fixed",
                discount_value="400.00",
                valid_from=now(),
                code_mode="unique",
                channels=["web"],
                status=status,
                created_by=created_by,
                approved_by=approved_by,
            )
            for who, action in [(made, "campaign.create"), *((e, "campaign.edit") for e in edits)]:
                if who is not None:
                    AuditEntry.objects.create(
                        actor=who,
                        actor_email=who.email,
                        action=action,
                        object_type="promotions.campaign",
                        object_id=str(c.pk),
                    )
            return c

        # the attack: Anna made it, Ben changed its purpose (and so became its "author"), Anna approved it
        attack = campaign(
            "Angriff", made=anna, created_by=ben, approved_by=anna, edits=[ben], status="approved"
        )
        fine = campaign("Sauber", made=anna, created_by=anna, approved_by=cleo, status="approved")
        Campaign.objects.filter(pk=fine.pk).update(approved_at=now() - timedelta(hours=1))
        # codes added before the approval make an editor (Dora), codes added after it do not (Ben)
        for who, at in ((dora, now() - timedelta(hours=2)), (ben, now())):
            entry = AuditEntry.objects.create(
                actor=who,
                actor_email=who.email,
                action="campaign.codes_import",
                object_type="promotions.campaign",
                object_id=str(fine.pk),
            )
            AuditEntry.objects.filter(pk=entry.pk).update(at=at)
        draft = campaign("Entwurf", made=anna, created_by=ben, edits=[ben])
        goodwill = campaign(
            "Goodwill: remediation #1",
            made=None,
            created_by=None,
            approved_by=cleo,
            status="approved",
        )
        Job.objects.create(
            reason="Leck",
            selector={},
            actions={},
            created_by=dora,
            executed_by=cleo,
            goodwill_campaign=goodwill,
        )
    finally:
        new = _migrate(AFTER)

    Campaign, Signoff, AuditEntry = (
        new.get_model(*m.split("."))
        for m in ("promotions.Campaign", "promotions.CampaignSignoff", "core.AuditEntry")
    )

    def parts(c):
        return [
            (s.user.email.split("@")[0], s.role)
            for s in Signoff.objects.filter(subject_id=c.pk).order_by("pk")
        ]

    assert parts(fine) == [("anna", "author"), ("dora", "editor"), ("cleo", "approver")]
    assert Campaign.objects.get(pk=fine.pk).approval_id == f"{fine.pk}:{cleo.pk}:approver"
    assert (
        parts(draft) == [("anna", "author"), ("ben", "editor")]
        and Campaign.objects.get(pk=draft.pk).approval_id is None
    )
    # the breach keeps the approver row it names and is paused, audited, for someone else to resume
    assert parts(attack) == [("anna", "approver"), ("ben", "editor")]
    c = Campaign.objects.get(pk=attack.pk)
    assert c.status == "paused" and "four eyes" in c.status_reason
    assert (
        AuditEntry.objects.filter(
            action="campaign.pause", object_id=str(attack.pk), source="system"
        ).count()
        == 1
    )
    # a goodwill campaign's author is whoever prepared its job
    assert parts(goodwill) == [("cleo", "approver"), ("dora", "author")]
    assert Campaign.objects.get(pk=goodwill.pk).created_by_id == dora.pk
