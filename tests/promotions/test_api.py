"""The promotions API (staff): campaigns, four eyes, codes shown once, redemptions, alerts and
the kill switch."""

from __future__ import annotations

from datetime import timedelta

from warenhaus.core.clock import now

BODY = {
    "name": "Herbst",
    "purpose": "Newsletter",
    "discount_kind": "fixed",
    "discount_value": "10.00",
    "min_basket": {"amount": "40.00", "currency": "EUR"},
    "budget": {"amount": "2000.00", "currency": "EUR"},
    "total_limit": 200,
    "per_customer_limit": 1,
    "code_mode": "unique",
    "expected_redemptions_per_hour": 20,
}


def _body(**kw):
    return {**BODY, "valid_until": (now() + timedelta(days=14)).isoformat(), **kw}


def test_create_approve_and_read(api_as, author, approver):
    a, b = api_as(author), api_as(approver)
    resp = a.post("/campaigns", _body())
    assert resp.status_code == 201, resp.json()
    c = resp.json()
    assert c["status"] == "draft" and c["created_by"] == author.email
    assert c["worst_case"]["amount"] == {"amount": "2000.00", "currency": "EUR"}
    assert c["dangers"] == []
    cid = c["id"]
    resp = a.post(f"/campaigns/{cid}/approve", {})
    assert resp.status_code == 403  # no approver role
    resp = b.post(f"/campaigns/{cid}/approve", {})
    assert (
        resp.status_code == 200
        and resp.json()["status"] == "approved"
        and resp.json()["approved_by"] == approver.email
    )
    listed = b.get("/campaigns").json()
    assert [x["id"] for x in listed["items"]] == [cid] and listed["next_cursor"] is None
    assert b.get(f"/campaigns/{cid}").json()["codes"]["total"] == 0
    assert b.get(f"/campaigns/{cid}/alerts").json() == {"items": [], "next_cursor": None}
    assert b.get("/campaigns/999999").json()["code"] == "campaign_not_found"


def test_four_eyes_over_the_api(api_as, make_user):
    both = make_user(roles=["promotions", "promotions_approver"])
    client = api_as(both)
    cid = client.post("/campaigns", _body()).json()["id"]
    resp = client.post(f"/campaigns/{cid}/approve", {})
    assert resp.status_code == 403 and resp.json()["code"] == "four_eyes_required"


def test_the_press_case_is_refused_without_override(api_as, author, approver):
    resp = api_as(author).post(
        "/campaigns",
        {
            "name": "Leck",
            "discount_kind": "fixed",
            "discount_value": "400.00",
            "min_basket": {"amount": "401.00", "currency": "EUR"},
            "code_mode": "public",
            "public_code": "GRATIS400",
        },
    )
    cid = resp.json()["id"]
    resp = api_as(approver).post(f"/campaigns/{cid}/approve", {})
    assert resp.status_code == 409
    problem = resp.json()
    assert problem["code"] == "dangerous_campaign"
    assert {d["code"] for d in problem["dangers"]} == {
        "public_code_without_budget",
        "unbounded",
        "discount_above_share_of_min_basket",
        "no_end_date",
    }
    assert problem["worst_case"]["unbounded"] is True


def test_codes_are_shown_once_and_the_key_replays_without_them(api_as, author, approver):
    from warenhaus.core.models import IdempotencyRecord

    a = api_as(author)
    cid = a.post("/campaigns", _body()).json()["id"]
    api_as(approver).post(f"/campaigns/{cid}/approve", {})
    resp = a.post(f"/campaigns/{cid}/codes", {"count": 3}, headers={"Idempotency-Key": "batch-1"})
    assert resp.status_code == 201, resp.json()
    codes = resp.json()["codes"]
    assert len(codes) == 3 and all(len(c) == 14 for c in codes)
    again = a.post(f"/campaigns/{cid}/codes", {"count": 3}, headers={"Idempotency-Key": "batch-1"})
    assert (
        again.status_code == 201
        and again.json()["codes"] is None
        and again.json()["batch"] == resp.json()["batch"]
    )
    assert again["Idempotent-Replayed"] == "true"
    stored = str(list(IdempotencyRecord.objects.values_list("response", flat=True)))
    assert not any(c in stored or c.replace("-", "") in stored for c in codes)
    assert a.post(f"/campaigns/{cid}/codes", {"count": 3}).status_code == 400  # key missing
    assert (
        a.post(
            f"/campaigns/{cid}/codes", {"count": 0}, headers={"Idempotency-Key": "batch-2"}
        ).json()["code"]
        == "invalid_count"
    )
    imported = a.post(
        f"/campaigns/{cid}/codes/import", {"codes": ["PARTNERA1", "PARTNERA2", "PARTNERA1"]}
    )
    assert imported.status_code == 201 and imported.json()["imported"] == 2


def test_redemptions_are_listed_and_the_kill_switch_works(
    api, api_as, author, approver, make_product, address
):
    b = api_as(approver)
    cid = (
        api_as(author)
        .post(
            "/campaigns", _body(code_mode="public", public_code="HERBST10", per_customer_limit=None)
        )
        .json()["id"]
    )
    b.post(f"/campaigns/{cid}/approve", {})
    numbers = []
    for i in range(3):
        cart_id = api.post("/carts").json()["id"]
        api.post(
            f"/carts/{cart_id}/lines",
            {"sku": make_product(price="45.00").variants.get().sku, "quantity": 1},
        )
        assert api.post(f"/carts/{cart_id}/vouchers", {"code": "HERBST10"}).status_code == 200
        numbers.append(
            api.post(
                f"/carts/{cart_id}/checkout",
                {
                    "email": f"k{i}@example.de",
                    "shipping_address": address,
                    "payment_method": "invoice",
                },
                headers={"Idempotency-Key": f"h{i}"},
            ).json()["number"]
        )
    page = b.get(f"/campaigns/{cid}/redemptions", limit=2).json()
    assert [r["order"] for r in page["items"]] == numbers[::-1][:2] and page["next_cursor"]
    rest = b.get(f"/campaigns/{cid}/redemptions", limit=2, cursor=page["next_cursor"]).json()
    assert [r["order"] for r in rest["items"]] == [numbers[0]]
    assert (
        page["items"][0]["amount"] == {"amount": "10.00", "currency": "EUR"}
        and page["items"][0]["channel"] == "api"
    )
    # pause -> next request refuses; resume -> works again; pattern block -> refused
    assert b.post(f"/campaigns/{cid}/pause", {"reason": "Leck"}).json()["status"] == "paused"
    cart_id = api.post("/carts").json()["id"]
    api.post(
        f"/carts/{cart_id}/lines",
        {"sku": make_product(price="45.00").variants.get().sku, "quantity": 1},
    )
    assert (
        api.post(f"/carts/{cart_id}/vouchers", {"code": "HERBST10"}).json()["code"]
        == "voucher_paused"
    )
    assert b.post(f"/campaigns/{cid}/resume", {}).json()["status"] == "approved"
    assert api.post(f"/carts/{cart_id}/vouchers", {"code": "HERBST10"}).status_code == 200
    resp = b.post("/codes/block-pattern", {"pattern": "HERBST*", "reason": "Leck"})
    assert resp.status_code == 200 and resp.json()["blocked"] == 1
    assert api.get(f"/carts/{cart_id}").json()["vouchers"][0]["problem"] == "voucher_blocked"
    assert b.post(f"/campaigns/{cid}/revoke", {"reason": "Ende"}).json()["status"] == "revoked"
    assert b.post("/codes/NICHTDA1/block", {"reason": "x"}).status_code == 404


def test_support_may_look_but_not_edit(api_as, make_user, author):
    support = api_as(make_user(roles=["support"]))
    cid = api_as(author).post("/campaigns", _body()).json()["id"]
    assert support.get(f"/campaigns/{cid}").status_code == 200
    assert support.post("/campaigns", _body()).status_code == 403
    assert support.post(f"/campaigns/{cid}/pause", {"reason": "x"}).status_code == 403


def test_partner_codes_can_come_as_csv(api_as, author):
    a = api_as(author)
    cid = a.post("/campaigns", _body()).json()["id"]
    resp = a.post(
        f"/campaigns/{cid}/codes/import",
        {"csv": "Gutscheincode;Wert\nPARTNER-CSV-1;10\nPARTNER-CSV-2;10\n\nkaputt!;10\n"},
    )
    assert resp.status_code == 201, resp.json()
    assert resp.json()["imported"] == 2 and resp.json()["rejected"] == [
        {"index": 2, "reason": "invalid_code"}
    ]
