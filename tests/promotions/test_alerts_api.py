"""The alerts of all campaigns over the API: filtered by open (still tripping) and
acknowledged, acknowledged by promotions.block, once, audited."""

from __future__ import annotations

import pytest

from warenhaus.core.clock import now
from warenhaus.core.models import AuditEntry
from warenhaus.promotions.models import Alert

pytestmark = pytest.mark.django_db


def _alert(c, monitor="rate", resolved=False):
    at = now()
    return Alert.objects.create(
        campaign=c,
        monitor=monitor,
        measured=60,
        threshold=10,
        peak=60,
        window_seconds=60,
        message="60 redemptions in the last 60 s; at most 10 expected.",
        created_at=at,
        last_seen_at=at,
        resolved_at=at if resolved else None,
    )


def test_filters_and_acknowledgement(make_campaign, api_as, make_user):
    a, b = make_campaign(name="A"), make_campaign(name="B")
    ongoing, over = _alert(a), _alert(b, resolved=True)
    risk, support = api_as(make_user(roles=["risk"])), api_as(make_user(roles=["support"]))

    def ids(client, **params):
        r = client.get("/alerts", **params)
        assert r.status_code == 200, r.content
        return [x["id"] for x in r.json()["items"]]

    assert ids(support) == [over.pk, ongoing.pk]
    assert ids(support, open="true") == [ongoing.pk]
    assert ids(support, open="false") == [over.pk]
    assert support.post(f"/alerts/{ongoing.pk}/acknowledge").status_code == 403  # may look, not act
    r = risk.post(f"/alerts/{ongoing.pk}/acknowledge")
    assert r.status_code == 200
    body = r.json()
    assert body["acknowledged_by"] and body["acknowledged_at"] and body["campaign"] == a.pk
    assert body["message_de"] == "60 Einlösungen in den letzten 60 s; höchstens 10 erwartet."
    assert (
        risk.post(f"/alerts/{ongoing.pk}/acknowledge").json()["acknowledged_at"]
        == body["acknowledged_at"]
    )
    assert (
        AuditEntry.objects.filter(action="alert.acknowledge", object_id=str(ongoing.pk)).count()
        == 1
    )
    assert ids(support, acknowledged="false") == [over.pk]
    assert ids(support, open="true", acknowledged="true") == [ongoing.pk]
