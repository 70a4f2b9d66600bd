"""Campaigns: four eyes, dangerous shapes and the worst case, the kill switch, the audit trail,
and codes that a database leak does not give away."""

from __future__ import annotations

from datetime import timedelta

import pytest

from warenhaus.checkout import vouchers as cart_vouchers
from warenhaus.core.errors import DomainError
from warenhaus.promotions import services
from warenhaus.promotions.models import Campaign, Code


def test_a_new_campaign_is_a_draft_and_its_author_cannot_approve_it(
    make_campaign, author, make_user
):
    c = make_campaign(approve=False)
    assert c.status == "draft"
    double = make_user(roles=["promotions", "promotions_approver"])
    own = services.create_campaign(
        actor=double,
        name="Eigen",
        discount_kind="fixed",
        discount_value="5",
        code_mode="unique",
        budget="100",
        total_limit=10,
        min_basket="50",
        valid_until=c.valid_until,
    )
    with pytest.raises(DomainError) as err:
        services.approve_campaign(campaign_id=own.pk, actor=double)
    assert err.value.code == "four_eyes_required" and err.value.status == 403
    with pytest.raises(DomainError) as err:
        services.approve_campaign(campaign_id=c.pk, actor=author)  # no approver role
    assert err.value.status == 403
    assert Campaign.objects.get(pk=own.pk).status == "draft"


def test_the_database_refuses_an_approval_by_the_author(make_campaign, author):
    from django.db import IntegrityError, transaction

    c = make_campaign(approve=False)
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=c.pk).update(status="approved", approved_by=author)


@pytest.mark.parametrize(
    "fields,reasons",
    [
        (
            {
                "code_mode": "public",
                "public_code": "GRATIS400",
                "discount_value": "400.00",
                "min_basket": "401.00",
                "budget": None,
                "valid_until": None,
            },
            {"public_code_without_budget", "discount_above_share_of_min_basket", "no_end_date"},
        ),
        ({"total_limit": None, "budget": None}, {"unbounded"}),
        (
            {"discount_value": "20.00", "min_basket": "30.00"},
            {"discount_above_share_of_min_basket"},
        ),
    ],
)
def test_dangerous_shapes_need_an_override_reason(make_campaign, approver, fields, reasons):
    c = make_campaign(approve=False, **fields)
    with pytest.raises(DomainError) as err:
        services.approve_campaign(campaign_id=c.pk, actor=approver)
    assert err.value.code == "dangerous_campaign" and err.value.status == 409
    assert {d["code"] for d in err.value.extra["dangers"]} == reasons
    assert "worst_case" in err.value.extra
    c = services.approve_campaign(
        campaign_id=c.pk, actor=approver, override_reason="Partneraktion, mit Vorstand abgestimmt"
    )
    assert c.status == "approved" and c.approval_override_reason


def test_worst_case_is_limit_times_discount_bounded_by_budget(make_campaign):
    c = make_campaign(approve=False, total_limit=100, discount_value="10.00", budget="500.00")
    assert services.worst_case(c)["amount"] == {"amount": "500.00", "currency": "EUR"}
    c = make_campaign(approve=False, total_limit=20, discount_value="10.00", budget="500.00")
    assert services.worst_case(c)["amount"]["amount"] == "200.00"
    c = make_campaign(
        approve=False, discount_kind="percent", discount_value="10", total_limit=None, budget=None
    )
    assert services.worst_case(c)["unbounded"] is True


def test_every_staff_action_is_audited(make_campaign, author, approver):
    from warenhaus.core.models import AuditEntry

    c = make_campaign(public_code="SOMMER10")
    services.pause_campaign(campaign_id=c.pk, actor=approver, reason="Leck")
    services.resume_campaign(campaign_id=c.pk, actor=approver, reason="geklärt")
    services.block_code(code="sommer-10", actor=author, reason="Leck")
    services.revoke_campaign(campaign_id=c.pk, actor=approver, reason="Ende")
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions[-6:] == [
        "campaign.create",
        "campaign.approve",
        "campaign.pause",
        "campaign.resume",
        "code.block",
        "campaign.revoke",
    ]
    with pytest.raises(DomainError) as err:
        services.resume_campaign(campaign_id=c.pk, actor=approver)
    assert err.value.code == "invalid_transition"


def _all_text_in_database() -> str:
    from django.apps import apps
    from django.core import serializers

    out = []
    for model in apps.get_models():
        out.append(serializers.serialize("json", model.objects.all()))
    return "\n".join(out)


def test_codes_are_stored_as_keyed_digests_only(make_campaign, author, cart_with):
    from warenhaus.checkout import services as checkout

    public = make_campaign(public_code="LECKSICHER2025")
    unique = make_campaign()
    _batch, generated = services.generate_codes(campaign_id=unique.pk, actor=author, count=5)
    imported = make_campaign()
    services.import_codes(campaign_id=imported.pk, actor=author, codes=["PARTNERCODE77"])
    cart_id = cart_with(price="49.97")
    cart_vouchers.apply_voucher(cart_id=cart_id, code=generated[0], channel="web")
    checkout.place_order(
        cart_id=cart_id,
        email="e@example.de",
        shipping_address={
            "name": "E",
            "street": "S 1",
            "postal_code": "12345",
            "city": "K",
            "country": "DE",
        },
        payment_method="invoice",
    )
    dump = _all_text_in_database().upper()
    for plain in [
        "LECKSICHER2025",
        "PARTNERCODE77",
        *generated,
        *(g.replace("-", "") for g in generated),
    ]:
        assert plain not in dump, plain
    assert Code.objects.filter(campaign=public).get().hint == "025"
    assert public.pk


def test_generation_is_capped_and_single_use(make_campaign, author, settings):
    c = make_campaign()
    settings.VOUCHER_MAX_CODES_PER_CALL = 50
    with pytest.raises(DomainError) as err:
        services.generate_codes(campaign_id=c.pk, actor=author, count=51)
    assert err.value.code == "invalid_count"
    _b, codes = services.generate_codes(campaign_id=c.pk, actor=author, count=50)
    assert len(set(codes)) == 50
    assert set(Code.objects.filter(campaign=c).values_list("max_uses", flat=True)) == {1}
    public = make_campaign(public_code="EINCODE")
    with pytest.raises(DomainError) as err:
        services.generate_codes(campaign_id=public.pk, actor=author, count=1)
    assert err.value.code == "campaign_has_public_code"


def test_import_reports_what_it_did_not_take(make_campaign, author):
    c = make_campaign()
    make_campaign(public_code="SCHONDA")
    out = services.import_codes(
        campaign_id=c.pk,
        actor=author,
        codes=["PARTNER-0001", "partner0001", "x", "SCHONDA", "PARTNER0002"],
    )
    assert out["imported"] == 2
    assert {(r["index"], r["reason"]) for r in out["rejected"]} == {
        (1, "duplicate"),
        (2, "invalid_code"),
        (3, "code_taken"),
    }


def test_block_pattern_blocks_existing_and_future_codes(make_campaign, author, cart_with):
    a = make_campaign(public_code="SOMMER400")
    b = make_campaign(public_code="SOMMERFEST")
    other = make_campaign(public_code="WINTER10")
    imported = make_campaign()
    services.import_codes(campaign_id=imported.pk, actor=author, codes=["SOMMERPARTNER1"])
    out = services.block_pattern(pattern="sommer*", actor=author, reason="geleakt")
    assert out["blocked"] == 3
    assert Code.objects.filter(campaign__in=[a, b, imported], status="blocked").count() == 3
    assert Code.objects.get(campaign=other).status == "active"
    cart_id = cart_with()
    with pytest.raises(DomainError) as err:
        cart_vouchers.apply_voucher(cart_id=cart_id, code="SOMMER400")
    assert err.value.code == "voucher_blocked"
    # a code made later that matches is refused as well
    with pytest.raises(DomainError) as err:
        make_campaign(public_code="SOMMERNEU")
    assert err.value.code == "voucher_blocked"
    cart_vouchers.apply_voucher(cart_id=cart_id, code="WINTER10")
    with pytest.raises(DomainError) as err:
        services.block_pattern(pattern="S*", actor=author, reason="zu breit")
    assert err.value.code == "invalid_pattern"


def test_cli_blocks_and_lists(make_campaign, capsys, monkeypatch):
    from django.db import connections

    from warenhaus.cli import main

    # the command closes connections when it ends, which would end this test's transaction
    monkeypatch.setattr(connections, "close_all", lambda: None)

    c = make_campaign(public_code="KLICODE1")
    assert main(["vouchers", "block", "--code", "KLICODE1", "--reason", "Leck"]) == 0
    assert Code.objects.get(campaign=c).status == "blocked"
    d = make_campaign(public_code="KLICODE2")
    assert main(["vouchers", "block", "--campaign", str(d.pk), "--reason", "Leck"]) == 0
    assert Campaign.objects.get(pk=d.pk).status == "paused"
    make_campaign(public_code="KLIMUSTER1")
    assert main(["vouchers", "block", "--pattern", "KLIMUSTER*", "--reason", "Leck"]) == 0
    assert "blocked 1 existing codes" in capsys.readouterr().out
    assert main(["vouchers", "list"]) == 0
    assert "Sommeraktion" in capsys.readouterr().out


def test_validity_window_must_be_ordered(author):
    from warenhaus.core.clock import now

    with pytest.raises(DomainError) as err:
        services.create_campaign(
            actor=author,
            name="X",
            discount_kind="fixed",
            discount_value="5",
            code_mode="unique",
            valid_from=now(),
            valid_until=now() - timedelta(days=1),
        )
    assert err.value.code == "validation_error"
