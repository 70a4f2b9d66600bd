"""Leak monitors: each compares a campaign's recent redemptions with what it was made for.

A monitor is one idea, evaluated per approved campaign over a recent window of its
:class:`~.models.Redemption` rows. It returns a :class:`Reading` (measured value, threshold,
window, whether it trips). Thresholds come from the campaign's ``monitor_settings``
(``{"rate": {"factor": 5}, "new_share": {"max_share": 0.9}}``); missing keys take the defaults
below, and ``{"<monitor>": {"enabled": false}}`` turns one off for that campaign.

The sweep that acts on the readings (alert, pause, mail) is :func:`.services.run_monitors`.

An alert keeps the English sentence of its reading (``Alert.message``, what the API and the
audit trail show); pages and mails render the monitor's own sentence from the stored measured
value, threshold and window with :meth:`Monitor.describe`, in the reader's language.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Avg, Count, FloatField, Q
from django.db.models.functions import Cast
from django.utils import formats, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .models import Campaign, Redemption


@dataclass(frozen=True)
class Reading:
    monitor: str
    measured: float
    threshold: float
    window_seconds: int
    tripped: bool
    message: str


def _number(value: float) -> str:
    return formats.number_format(Decimal(f"{value:g}"), use_l10n=True)


class Monitor:
    name: str = ""
    defaults: dict = {}
    #: what a person calls it, and the sentence an alert of it reads as (with %(measured)s,
    #: %(threshold)s and %(window)s); shares are shown as percentages
    label = ""
    sentence = ""
    shares = False

    def describe(
        self, *, measured: float, threshold: float, window_seconds: int, language: str | None = None
    ) -> str:
        """The alert's sentence in ``language`` (default: the active one)."""
        scale = 100 if self.shares else 1
        with translation.override(language) if language else nullcontext():
            return gettext(str(self.sentence)) % {
                "measured": _number(round(measured * scale, 1)),
                "threshold": _number(round(threshold * scale, 1)),
                "window": _number(window_seconds),
            }

    def settings_for(self, campaign: Campaign) -> dict:
        own = (campaign.monitor_settings or {}).get(self.name) or {}
        return {**self.defaults, **(own if isinstance(own, dict) else {})}

    def enabled(self, campaign: Campaign) -> bool:
        return bool(self.settings_for(campaign).get("enabled", True))

    def rows(self, campaign: Campaign, at: datetime, window_seconds: int):
        # (at - window, at]: a redemption exactly one window old is no longer in it
        return Redemption.objects.filter(
            campaign=campaign,
            created_at__gt=at - timedelta(seconds=window_seconds),
            created_at__lte=at,
        )

    def read(self, campaign: Campaign, at: datetime) -> Reading:  # pragma: no cover - abstract
        raise NotImplementedError


class RateMonitor(Monitor):
    """Redemptions in the last minute against the campaign's expected rate: trips when they exceed
    ``max(expected per minute x factor, floor)``. A code leaked and used once a second gives 60 a
    minute and trips it after ``floor`` seconds."""

    name = "rate"
    defaults = {"window_seconds": 60, "factor": 3.0, "floor": 10}
    label = _("Redemption rate")
    sentence = _(
        "%(measured)s redemptions in the last %(window)s s; at most %(threshold)s expected."
    )

    def threshold(self, campaign: Campaign) -> float:
        s = self.settings_for(campaign)
        window = int(s["window_seconds"])
        expected = (campaign.expected_redemptions_per_hour or 0) / 3600 * window
        return max(expected * float(s["factor"]), float(s["floor"]))

    def threshold_per_minute(self, campaign: Campaign) -> float:
        """The threshold scaled to one minute, for a chart of redemptions per minute."""
        window = int(self.settings_for(campaign)["window_seconds"]) or 60
        return self.threshold(campaign) * 60 / window

    def read(self, campaign, at):
        window = int(self.settings_for(campaign)["window_seconds"])
        threshold = self.threshold(campaign)
        n = self.rows(campaign, at, window).count()
        return Reading(
            self.name,
            float(n),
            threshold,
            window,
            n > threshold,
            f"{n} redemptions in the last {window} s; at most {threshold:g} expected.",
        )


class NewAccountShareMonitor(Monitor):
    """Share of the window's redeemers (distinct customers) who are guests or accounts made just
    before: a leaked code draws people who were not customers."""

    name = "new_share"
    defaults = {"window_seconds": 600, "max_share": 0.8, "min_redeemers": 20}
    label = _("New accounts and guests")
    sentence = _(
        "%(measured)s%% of the redeemers in the last %(window)s s are guests or new accounts; at most %(threshold)s%% expected."
    )
    shares = True

    def read(self, campaign, at):
        s = self.settings_for(campaign)
        window, limit, least = (
            int(s["window_seconds"]),
            float(s["max_share"]),
            int(s["min_redeemers"]),
        )
        rows = self.rows(campaign, at, window)
        everyone = rows.values("redeemer_key").distinct().count()
        new = (
            rows.filter(Q(new_account=True) | Q(guest=True))
            .values("redeemer_key")
            .distinct()
            .count()
            if everyone
            else 0
        )
        share = new / everyone if everyone else 0.0
        return Reading(
            self.name,
            round(share, 4),
            limit,
            window,
            everyone >= least and share > limit,
            f"{new} of {everyone} redeemers in the last {window} s are guests or new accounts ({share:.0%}); at most {limit:.0%} expected.",
        )


class AddressSpreadMonitor(Monitor):
    """The same code redeemed from many client addresses: a code meant for one person or a small
    group that shows up everywhere has been shared."""

    name = "addresses"
    defaults = {"window_seconds": 600, "max_addresses": 30}
    label = _("Addresses per code")
    sentence = _(
        "One code was redeemed from %(measured)s different addresses in the last %(window)s s; at most %(threshold)s expected."
    )

    def read(self, campaign, at):
        s = self.settings_for(campaign)
        window, limit = int(s["window_seconds"]), int(s["max_addresses"])
        top = (
            self.rows(campaign, at, window)
            .filter(client_ip__isnull=False)
            .values("code_id")
            .annotate(n=Count("client_ip", distinct=True))
            .order_by("-n")
            .first()
        )
        n = top["n"] if top else 0
        return Reading(
            self.name,
            float(n),
            float(limit),
            window,
            n > limit,
            f"One code was redeemed from {n} different addresses in the last {window} s; at most {limit} expected.",
        )


class DiscountShareMonitor(Monitor):
    """Average share of the basket the discount takes: a code that pays for most of each basket
    (400 EUR off 401 EUR) is being used as it was not meant to be."""

    name = "discount_share"
    defaults = {"window_seconds": 600, "max_share": 0.4, "min_redemptions": 10}
    label = _("Discount share of the basket")
    sentence = _(
        "Discounts took %(measured)s%% of the basket on average in the last %(window)s s; at most %(threshold)s%% expected."
    )
    shares = True

    def read(self, campaign, at):
        s = self.settings_for(campaign)
        window, limit, least = (
            int(s["window_seconds"]),
            float(s["max_share"]),
            int(s["min_redemptions"]),
        )
        rows = self.rows(campaign, at, window).filter(basket_value__gt=0)
        agg = rows.aggregate(
            n=Count("id"),
            share=Avg(Cast("amount", FloatField()) / Cast("basket_value", FloatField())),
        )
        n, share = agg["n"] or 0, float(agg["share"] or 0.0)
        return Reading(
            self.name,
            round(share, 4),
            limit,
            window,
            n >= least and share > limit,
            f"Discounts took {share:.0%} of the basket on average over {n} redemptions in the last {window} s; at most {limit:.0%} expected.",
        )


MONITORS: tuple[Monitor, ...] = (
    RateMonitor(),
    NewAccountShareMonitor(),
    AddressSpreadMonitor(),
    DiscountShareMonitor(),
)


def monitor_named(name: str) -> Monitor | None:
    return next((m for m in MONITORS if m.name == name), None)


def readings(campaign: Campaign, at: datetime) -> list[Reading]:
    return [m.read(campaign, at) for m in MONITORS if m.enabled(campaign)]


def describe_alert(alert, language: str | None = None) -> str:
    """An alert's sentence in the reader's language; the stored English one for a monitor this
    version does not know."""
    m = monitor_named(alert.monitor)
    if m is None:
        return alert.message
    return m.describe(
        measured=alert.measured,
        threshold=alert.threshold,
        window_seconds=alert.window_seconds,
        language=language,
    )


def monitor_label(name: str) -> str:
    m = monitor_named(name)
    return str(m.label) if m is not None else name
