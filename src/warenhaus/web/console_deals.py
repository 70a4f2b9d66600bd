"""The console's flash deals: the list, making a deal, and the live dashboard staff watch during
a rush (queue, admitted, held, sold, the wait list, admission rate against the pace, a chart per
minute), refreshed by htmx polling a fragment; cancelling a deal with a reason.

``deals.view`` sees, ``deals.manage`` makes and cancels (:mod:`warenhaus.accounts.roles`). The
figures are :func:`warenhaus.deals.selectors.dashboard`'s; this module only draws them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from warenhaus.accounts.roles import can
from warenhaus.core.clock import now
from warenhaus.core.errors import DomainError
from warenhaus.deals import selectors, services
from warenhaus.deals.models import Deal
from warenhaus.deals.services import DEAL_BOUNDS

from .console import _page, staff_only
from .console_promotions import _DT
from .deals_pages import deal_or_404, deal_row
from .forms import normalise_amount
from .messages_map import error_message

CHART_MINUTES = 60
#: the chart's series and their colours
KINDS = (("admitted", "#0e5a7e"), ("sold", "#2e7d32"), ("returned", "#c0392b"))
LIVE_SECONDS = 3


class DealForm(forms.Form):
    """A deal as typed (times in the shop's time zone, Berlin); the rules are the service's."""

    sku = forms.CharField(label=gettext_lazy("SKU"), max_length=64)
    deal_price = forms.CharField(label=gettext_lazy("Deal price (EUR)"), max_length=20)
    units = forms.IntegerField(
        label=gettext_lazy("Units"), min_value=1, max_value=DEAL_BOUNDS["units"][1]
    )
    starts_at = forms.DateTimeField(label=gettext_lazy("Starts (Berlin time)"), **_DT)
    ends_at = forms.DateTimeField(label=gettext_lazy("Ends (Berlin time)"), **_DT)
    limit_per_customer = forms.IntegerField(
        label=gettext_lazy("At most per customer"),
        min_value=1,
        max_value=DEAL_BOUNDS["limit_per_customer"][1],
        initial=1,
    )
    hold_minutes = forms.IntegerField(
        label=gettext_lazy("Minutes a cart holds the units"),
        min_value=1,
        max_value=DEAL_BOUNDS["hold_minutes"][1],
        initial=10,
    )
    admissions_per_minute = forms.IntegerField(
        label=gettext_lazy("Shoppers let in per minute (pace)"),
        min_value=1,
        max_value=DEAL_BOUNDS["admissions_per_minute"][1],
        required=False,
        help_text=gettext_lazy("Empty: the shop's default pace."),
    )

    def clean(self):
        data = super().clean()
        if data.get("starts_at") and data.get("ends_at") and data["ends_at"] <= data["starts_at"]:
            self.add_error("ends_at", gettext_lazy("The end must be after the start."))
        return data

    def service_fields(self) -> dict:
        fields = dict(self.cleaned_data)
        fields["deal_price"] = normalise_amount(fields["deal_price"])
        if fields["admissions_per_minute"] is None:
            fields.pop("admissions_per_minute")
        return fields


def _error(err: DomainError) -> str:
    """The readable reason, with the field it concerns when the service names one."""
    field = err.extra.get("field")
    if field in DealForm.base_fields:
        return f"{DealForm.base_fields[field].label}: {error_message(err)}"
    return error_message(err)


@require_GET
@staff_only("deals.view")
def deals_list(request):
    page = _page(
        request, Deal.objects.select_related("variant__product").order_by("-starts_at", "-id")
    )
    return render(
        request,
        "web/console/deals/list.html",
        {
            "page": page,
            "rows": [deal_row(d) for d in page.object_list],
            "may_manage": can(request.user, "deals.manage"),
        },
    )


def _form_page(request, form, *, status=200, error=""):
    return render(
        request, "web/console/deals/form.html", {"form": form, "error": error}, status=status
    )


@require_http_methods(["GET", "POST"])
@staff_only("deals.manage")
def deal_new(request):
    if request.method == "GET":
        return _form_page(request, DealForm(initial={"sku": request.GET.get("sku", "")}))
    form = DealForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form, status=422, error=_("Please correct the marked fields."))
    try:
        deal = services.create_deal(actor=request.user, source="console", **form.service_fields())
    except DomainError as err:
        return _form_page(request, form, status=err.status, error=_error(err))
    messages.success(request, _("The deal has been made; its units are reserved from stock."))
    return redirect("web:console_deal", pk=deal.pk)


def deal_chart(
    series: list[dict], *, minutes: int = CHART_MINUTES, at: datetime | None = None
) -> dict:
    """Admitted, sold and returned per minute as grouped bars over the last ``minutes`` minutes
    (an inline SVG like the promotions' chart); the table alternative lists every minute in
    which anything happened."""
    counts = {parse_datetime(r["minute"]).timestamp(): r for r in series}
    width, height = 720, 160
    end = (at or now()).replace(second=0, microsecond=0)
    start = end - timedelta(minutes=minutes - 1)
    slot = width / minutes
    top = max([max(r["admitted"], r["sold"], r["returned"]) for r in series] + [1]) * 1.1
    bars = []
    for i in range(minutes):
        minute = start + timedelta(minutes=i)
        r = counts.get(minute.timestamp(), {})
        for j, (kind, colour) in enumerate(KINDS):
            n = r.get(kind, 0)
            if n:
                h = height * n / top
                bars.append(
                    {
                        "kind": kind,
                        "colour": colour,
                        "minute": minute,
                        "count": n,
                        "x": round(i * slot + j * slot / 3, 2),
                        "w": round(max(slot / 3 - 0.5, 1), 2),
                        "y": round(height - h, 1),
                        "h": round(h, 1),
                    }
                )
        if i % 10 == 0:
            bars.append({"kind": "label", "minute": minute, "x": round(i * slot, 2)})
    rows = [{"minute": parse_datetime(r["minute"]), **{k: r[k] for k, _c in KINDS}} for r in series]
    return {
        "bars": bars,
        "rows": rows,
        "width": width,
        "height": height,
        "busy": any(b["kind"] != "label" for b in bars),
    }


def _dashboard_context(request, deal: Deal) -> dict:
    board = selectors.dashboard(deal)
    return {
        "deal": deal,
        "d": deal_row(deal),
        "board": board,
        "chart": deal_chart(board["series"]),
        "chart_minutes": CHART_MINUTES,
        "live_seconds": LIVE_SECONDS,
        "may_manage": can(request.user, "deals.manage"),
        "over_pace": board["admission_rate_per_minute"] > board["pace_per_minute"],
    }


@require_GET
@staff_only("deals.view")
def deal_dashboard(request, pk: int):
    return render(
        request, "web/console/deals/dashboard.html", _dashboard_context(request, deal_or_404(pk))
    )


@require_GET
@staff_only("deals.view")
def deal_live(request, pk: int):
    """The dashboard's figures and chart (what htmx polls every few seconds)."""
    return render(
        request, "web/console/deals/_live.html", _dashboard_context(request, deal_or_404(pk))
    )


@require_POST
@staff_only("deals.manage")
def deal_cancel(request, pk: int):
    deal = deal_or_404(pk)
    try:
        services.cancel_deal(
            deal_id=deal.pk,
            actor=request.user,
            reason=request.POST.get("reason", ""),
            source="console",
        )
    except DomainError as err:
        text = (
            _("Please give a reason for cancelling; it goes into the audit trail.")
            if err.code == "reason_required"
            else error_message(err)
        )
        ctx = _dashboard_context(request, deal)
        return render(
            request, "web/console/deals/dashboard.html", {**ctx, "error": text}, status=err.status
        )
    messages.success(
        request,
        _(
            "The deal has been cancelled. Reservations already given are honoured until their deadline."
        ),
    )
    return redirect("web:console_deal", pk=deal.pk)
