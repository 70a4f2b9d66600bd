"""Four eyes on campaigns as a security probe found them broken (issue 13, findings 3 and 4):
nobody who made or edited a campaign approves it, and an approved campaign does not change
shape without a second person. Each attack is replayed as it was, and the database refuses the
same thing when the services are bypassed."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from warenhaus.core.audit import AuditEntry
from warenhaus.core.clock import now
from warenhaus.core.errors import DomainError
from warenhaus.promotions import codes as codelib
from warenhaus.promotions import editing, services
from warenhaus.promotions.models import Campaign, CampaignSignoff, Code, Redemption

try:
    from tests.conftest import requires_postgres
except ImportError:
    from conftest import requires_postgres


def _problem(resp, status, code):
    assert resp.status_code == status, resp.content
    assert resp["Content-Type"].startswith("application/problem+json")
    assert resp.json()["code"] == code, resp.json()
    return resp.json()


DANGEROUS = {
    "name": "Mitarbeiterrabatt",
    "discount_kind": "fixed",
    "discount_value": "400.00",
    "code_mode": "unique",
    "total_limit": 10,
    "valid_until": "2099-01-01T00:00:00+00:00",
}


# --- finding 3: the last editor is not the only one who shaped it ------------------------------


def test_the_author_cannot_approve_after_a_colleague_changed_only_the_purpose(api_as, make_user):
    both = make_user(roles=["promotions", "promotions_approver"])
    colleague = make_user(roles=["promotions"])
    made = api_as(both).post("/campaigns", DANGEROUS)
    assert made.status_code == 201, made.content
    pk = made.json()["id"]
    assert (
        api_as(colleague).patch(f"/campaigns/{pk}", {"purpose": "Für das Sommerfest"}).status_code
        == 200
    )

    body = _problem(
        api_as(both).post(f"/campaigns/{pk}/approve", {"override_reason": "passt schon"}),
        403,
        "four_eyes_required",
    )
    assert body["took_part_as"] == "author"
    c = Campaign.objects.get(pk=pk)
    assert c.status == "draft" and c.approved_by is None and c.created_by == both
    # someone who did neither may approve it
    third = make_user(roles=["promotions_approver"])
    resp = api_as(third).post(
        f"/campaigns/{pk}/approve", {"override_reason": "Mit der Geschäftsleitung abgestimmt"}
    )
    assert resp.status_code == 200 and resp.json()["approved_by"] == third.email
    assert [(p["email"], p["role"]) for p in resp.json()["took_part"]] == [
        (both.email, "author"),
        (colleague.email, "editor"),
        (third.email, "approver"),
    ]
    # paused (say by its leak monitor), it redeems again only by a second approval of the same kind
    assert (
        api_as(third)
        .post(f"/campaigns/{pk}/pause", {"reason": "Auffälliges Einlösemuster"})
        .status_code
        == 200
    )
    _problem(
        api_as(both).post(f"/campaigns/{pk}/resume", {"reason": "war nichts"}),
        403,
        "four_eyes_required",
    )
    assert Campaign.objects.get(pk=pk).status == "paused"
    assert api_as(third).post(f"/campaigns/{pk}/resume", {"reason": "geprüft"}).status_code == 200


def test_an_editor_with_the_approver_role_cannot_approve_either(make_campaign, make_user):
    both = make_user(roles=["promotions", "promotions_approver"])
    c = make_campaign(approve=False)
    editing.update_campaign(campaign_id=c.pk, actor=both, changes={"purpose": "nur ein Wort"})
    with pytest.raises(DomainError) as err:
        services.approve_campaign(campaign_id=c.pk, actor=both, override_reason="passt schon")
    assert (err.value.code, err.value.status, err.value.extra["took_part_as"]) == (
        "four_eyes_required",
        403,
        "editor",
    )


def test_adding_codes_to_a_draft_counts_as_editing_it(make_campaign, make_user):
    both = make_user(roles=["promotions", "promotions_approver"])
    generated, imported = make_campaign(approve=False), make_campaign(approve=False)
    services.generate_codes(campaign_id=generated.pk, actor=both, count=1)
    services.import_codes(campaign_id=imported.pk, actor=both, codes=["PARTNERHAUS12"])
    for c in (generated, imported):
        with pytest.raises(DomainError) as err:
            services.approve_campaign(campaign_id=c.pk, actor=both)
        assert err.value.code == "four_eyes_required"


def test_the_unique_constraint_refuses_even_when_the_services_check_is_skipped(
    make_campaign, make_user, monkeypatch
):
    """What holds when two requests race past the check: the approver's row cannot join an editor's."""
    from warenhaus.core import signoffs

    both = make_user(roles=["promotions", "promotions_approver"])
    c = make_campaign(approve=False)
    editing.update_campaign(campaign_id=c.pk, actor=both, changes={"purpose": "geändert"})
    monkeypatch.setattr(signoffs, "part_of", lambda model, *, subject, user: "")
    with pytest.raises(DomainError) as err:
        services.approve_campaign(campaign_id=c.pk, actor=both)
    assert err.value.code == "four_eyes_required"
    assert Campaign.objects.get(pk=c.pk).status == "draft"
    assert not CampaignSignoff.objects.filter(subject=c, role="approver").exists()


def test_the_database_refuses_an_approver_who_made_or_edited_the_campaign(
    make_campaign, make_user, author
):
    from warenhaus.core.signoffs import signoff_key

    editor = make_user(roles=["promotions", "promotions_approver"])
    c = make_campaign(approve=False)
    editing.update_campaign(campaign_id=c.pk, actor=editor, changes={"purpose": "geändert"})
    for who in (author, editor):
        # their approver row cannot be written next to their author or editor row
        with pytest.raises(IntegrityError), transaction.atomic():
            CampaignSignoff.objects.create(
                subject=c, user=who, role="approver", key=signoff_key(c.pk, who.pk, "approver")
            )
    # the campaign cannot be marked approved by the editor without that row ...
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=c.pk).update(status="approved", approved_by=editor)
    # ... nor by pointing at the editor's own row, or at someone else's approval
    for key in (signoff_key(c.pk, editor.pk, "editor"), signoff_key(c.pk, author.pk, "approver")):
        with pytest.raises(IntegrityError), transaction.atomic():
            Campaign.objects.filter(pk=c.pk).update(
                status="approved", approved_by=editor, approval_id=key
            )
    # ... nor by naming the approver row it would need (that row does not exist: the foreign key)
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=c.pk).update(
            status="approved",
            approved_by=editor,
            approval_id=signoff_key(c.pk, editor.pk, "approver"),
        )
        connection.check_constraints()
    # a row whose key does not name it is refused too
    other = make_user(roles=["promotions_approver"])
    with pytest.raises(IntegrityError), transaction.atomic():
        CampaignSignoff.objects.create(
            subject=c, user=other, role="approver", key=signoff_key(c.pk, editor.pk, "approver")
        )
    assert Campaign.objects.get(pk=c.pk).status == "draft"


def test_the_approval_is_recorded_with_everyone_who_took_part(
    make_campaign, make_user, author, approver
):
    editor = make_user(roles=["promotions"])
    c = make_campaign(approve=False)
    editing.update_campaign(campaign_id=c.pk, actor=editor, changes={"purpose": "geändert"})
    services.approve_campaign(campaign_id=c.pk, actor=approver)
    c = Campaign.objects.get(pk=c.pk)
    assert c.approval_id == f"{c.pk}:{approver.pk}:approver" and c.approval.user == approver
    entry = AuditEntry.objects.get(action="campaign.approve", object_id=str(c.pk))
    assert entry.after["took_part"] == [
        {"email": author.email, "role": "author"},
        {"email": editor.email, "role": "editor"},
        {"email": approver.email, "role": "approver"},
    ]


# --- finding 4: an approved campaign keeps its shape -------------------------------------------


def _buy_with(api_as, shopper, product, code, address):
    client = api_as(shopper)
    cart_id = client.post("/carts").json()["id"]
    assert (
        client.post(
            f"/carts/{cart_id}/lines", {"sku": product.variants.get().sku, "quantity": 1}
        ).status_code
        == 200
    )
    applied = client.post(f"/carts/{cart_id}/vouchers", {"code": code})
    assert applied.status_code == 200, applied.content
    return lambda: client.post(
        f"/carts/{cart_id}/checkout",
        {"email": shopper.email, "shipping_address": address, "payment_method": "invoice"},
        headers={"Idempotency-Key": f"k-{shopper.pk}"},
    )


def test_promotions_alone_cannot_import_a_shared_code_into_an_approved_campaign(
    make_campaign, make_user, api_as, make_product, address
):
    c = make_campaign(per_customer_limit=1)  # a unique-code campaign, approved by a second person
    promotions = api_as(make_user(roles=["promotions"]))
    body = _problem(
        promotions.post(
            f"/campaigns/{c.pk}/codes/import", {"codes": ["SECSHARED77"], "max_uses_per_code": None}
        ),
        409,
        "codes_widen_campaign",
    )
    assert body["current_status"] == "approved"
    _problem(
        promotions.post(
            f"/campaigns/{c.pk}/codes/import", {"codes": ["SECSHARED77"], "max_uses_per_code": 5}
        ),
        409,
        "codes_widen_campaign",
    )
    assert not Code.objects.filter(digest=codelib.digest("SECSHARED77")).exists()
    assert not AuditEntry.objects.filter(action="campaign.codes_import").exists()

    # the same code single-use is fine, and then only one of two customers can redeem it
    resp = promotions.post(f"/campaigns/{c.pk}/codes/import", {"codes": ["SECSHARED77"]})
    assert resp.status_code == 201 and resp.json()["imported"] == 1
    assert AuditEntry.objects.get(action="campaign.codes_import").after["max_uses_per_code"] == 1
    product = make_product(price="49.97", on_hand=5)
    first, second = (
        _buy_with(api_as, make_user(), product, "SECSHARED77", address) for _ in range(2)
    )
    assert first().status_code == 201
    _problem(second(), 409, "voucher_exhausted")
    assert Redemption.objects.filter(campaign=c).count() == 1


def test_a_paused_campaign_takes_only_single_use_codes_too(make_campaign, author, approver):
    c = make_campaign()
    services.pause_campaign(campaign_id=c.pk, actor=approver, reason="Leck")
    with pytest.raises(DomainError) as err:
        services.import_codes(
            campaign_id=c.pk, actor=author, codes=["GETEILT2026"], max_uses_per_code=None
        )
    assert (err.value.code, err.value.status) == ("codes_widen_campaign", 409)
    _batch, codes = services.generate_codes(campaign_id=c.pk, actor=author, count=2)
    assert list(Code.objects.filter(campaign=c).values_list("max_uses", flat=True)) == [1, 1]


def test_a_draft_may_take_shared_codes_which_the_approver_sees_as_a_danger(
    make_campaign, author, approver
):
    c = make_campaign(approve=False, budget=None, total_limit=50)
    services.import_codes(
        campaign_id=c.pk, actor=author, codes=["VERLAGSCODE12"], max_uses_per_code=None
    )
    with pytest.raises(DomainError) as err:
        services.approve_campaign(campaign_id=c.pk, actor=approver)
    assert err.value.code == "dangerous_campaign"
    assert [d["code"] for d in err.value.extra["dangers"]] == ["shared_codes_without_budget"]
    assert (
        services.approve_campaign(
            campaign_id=c.pk, actor=approver, override_reason="Verlagsaktion"
        ).status
        == "approved"
    )


def test_the_database_keeps_generated_codes_single_use(unique_code):
    c, code = unique_code()
    row = Code.objects.get(digest=codelib.digest(codelib.normalise(code)))
    for max_uses in (None, 2):
        with pytest.raises(IntegrityError), transaction.atomic():
            Code.objects.filter(pk=row.pk).update(max_uses=max_uses)


# --- races on PostgreSQL ------------------------------------------------------------------------


def _together(*calls):
    """Run the calls at the same moment in threads with their own connections; their outcomes
    (the value, or the DomainError's code)."""
    from django.db import connections

    barrier = threading.Barrier(len(calls))
    out = [None] * len(calls)

    def run(i, fn):
        try:
            barrier.wait()
            out[i] = fn()
        except DomainError as err:
            out[i] = err.code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def on_postgres(test):
    """Races run on real PostgreSQL, with threads that each have their own connection."""
    for mark in (
        pytest.mark.postgres,
        requires_postgres,
        pytest.mark.django_db(transaction=True),
        pytest.mark.xdist_group("pg-concurrency"),
    ):
        test = mark(test)
    return test


@on_postgres
def test_a_shared_import_and_an_approval_at_the_same_moment_never_both_pass(make_user):
    author, approver = make_user(roles=["promotions"]), make_user(roles=["promotions_approver"])
    for n in range(8):
        c = services.create_campaign(
            actor=author,
            name=f"Rennen {n}",
            discount_kind="fixed",
            discount_value="5.00",
            min_basket="20.00",
            code_mode="unique",
            total_limit=50,
            valid_until=now() + timedelta(days=1),
        )
        imported, approved = _together(
            lambda c=c, n=n: services.import_codes(
                campaign_id=c.pk, actor=author, codes=[f"GETEILT{n}X"], max_uses_per_code=None
            ),
            lambda c=c: services.approve_campaign(campaign_id=c.pk, actor=approver),
        )
        # either the import came first and the approval saw the shared code, or the approval came first
        assert approved == "dangerous_campaign" or imported == "codes_widen_campaign", (
            imported,
            approved,
        )
        c.refresh_from_db()
        assert not (c.status == "approved" and services.shared_codes(c))


@on_postgres
def test_an_edit_and_an_approval_by_the_same_person_at_the_same_moment_never_both_pass(make_user):
    author, both = (
        make_user(roles=["promotions"]),
        make_user(roles=["promotions", "promotions_approver"]),
    )
    for n in range(8):
        c = services.create_campaign(
            actor=author,
            name=f"Rennen {n}",
            discount_kind="fixed",
            discount_value="5.00",
            min_basket="20.00",
            code_mode="unique",
            total_limit=50,
            budget="250.00",
            valid_until=now() + timedelta(days=1),
        )
        edited, approved = _together(
            lambda c=c: editing.update_campaign(
                campaign_id=c.pk,
                actor=both,
                changes={"discount_value": "19.00", "min_basket": "20.00"},
            ),
            lambda c=c: services.approve_campaign(campaign_id=c.pk, actor=both),
        )
        assert edited == "campaign_not_editable" or approved == "four_eyes_required", (
            edited,
            approved,
        )
        c.refresh_from_db()
        assert c.approved_by is None or c.discount_value == 5
