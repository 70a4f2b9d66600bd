"""core asks higher apps through ports they fill in at start-up; and one list of channels."""

from __future__ import annotations

from warenhaus.core import callers
from warenhaus.core.channels import Channel


def test_accounts_provides_the_callers_port(db):
    from warenhaus.accounts import roles, services

    assert callers.user_for_token("no-such-token") is None
    provider = callers._installed()
    assert provider.user_for_token is services.user_for_token and provider.can is roles.can


def test_every_channel_list_is_the_one_channel_type():
    from warenhaus.orders.models import Channel as OrderChannel
    from warenhaus.orders.models import Order
    from warenhaus.promotions.models import CHANNELS

    assert OrderChannel is Channel
    assert Channel.values == ["web", "api", "phone"]  # stored values: never change them
    assert set(CHANNELS) == set(Channel.values)
    assert Order._meta.get_field("channel").choices == Channel.choices
