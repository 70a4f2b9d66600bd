"""The promotions part of the operator console: campaigns (list, detail with the redemption
chart and the monitors' thresholds, create, edit drafts), the four-eyes approval screen, the
alerts of the leak monitors and the kill switch.

Like the rest of the console: every view checks its capability on the server
(:func:`.console.staff_only`), calls one service of :mod:`warenhaus.promotions` and shows its
refusals as translated sentences (:mod:`.messages_map`). Pages work without JavaScript.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMinute
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from warenhaus.accounts.roles import can
from warenhaus.core import parsing
from warenhaus.core.clock import now
from warenhaus.core.errors import DomainError, NotFound
from warenhaus.promotions import codes as codelib
from warenhaus.promotions import editing, monitors, selectors, services
from warenhaus.promotions.models import (
    CHANNELS,
    BlockRule,
    Campaign,
    CampaignStatus,
    Code,
    CodeMode,
    DiscountKind,
    Eligibility,
    Stacking,
)
from warenhaus.promotions.services import COUNT_MAX

from .console import _page, staff_only
from .forms import normalise_amount
from .messages_map import error_message

CHART_MINUTES = 180


# --- forms -------------------------------------------------------------------------------------

_DT = {
    "widget": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    "input_formats": ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%d.%m.%Y %H:%M"],
}


class CampaignForm(forms.Form):
    """The shape of a campaign as typed; the rules themselves are the service's."""

    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    purpose = forms.CharField(
        label=gettext_lazy("Purpose"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    discount_kind = forms.ChoiceField(
        label=gettext_lazy("Kind of discount"),
        choices=[
            (DiscountKind.FIXED, gettext_lazy("fixed amount (EUR)")),
            (DiscountKind.PERCENT, gettext_lazy("percent")),
        ],
    )
    discount_value = forms.CharField(label=gettext_lazy("Discount (EUR or percent)"), max_length=20)
    discount_cap = forms.CharField(
        label=gettext_lazy("Largest discount of a percent voucher (EUR)"),
        max_length=20,
        required=False,
    )
    min_basket = forms.CharField(
        label=gettext_lazy("Minimum basket (EUR)"), max_length=20, required=False
    )
    max_share = forms.CharField(
        label=gettext_lazy("Largest share of the basket (percent)"),
        max_length=6,
        required=False,
        initial="50",
    )
    eligible_categories = forms.CharField(
        label=gettext_lazy("Categories (slugs, separated by commas; empty: all)"),
        max_length=2000,
        required=False,
    )
    eligible_products = forms.CharField(
        label=gettext_lazy("Products (slugs, separated by commas; empty: all)"),
        max_length=8000,
        required=False,
    )
    customer_eligibility = forms.ChoiceField(
        label=gettext_lazy("Who may use it"),
        choices=[
            (Eligibility.ANY, gettext_lazy("anyone")),
            (Eligibility.REGISTERED, gettext_lazy("registered customers")),
            (Eligibility.NEW, gettext_lazy("new customers (first order)")),
        ],
    )
    channels = forms.MultipleChoiceField(
        label=gettext_lazy("Channels"),
        choices=[(c, c) for c in CHANNELS],
        widget=forms.CheckboxSelectMultiple,
        initial=list(CHANNELS),
    )
    valid_from = forms.DateTimeField(label=gettext_lazy("Valid from"), required=False, **_DT)
    valid_until = forms.DateTimeField(label=gettext_lazy("Valid until"), required=False, **_DT)
    total_limit = forms.IntegerField(
        label=gettext_lazy("Total redemptions at most"),
        required=False,
        min_value=1,
        max_value=COUNT_MAX["total_limit"],
    )
    per_customer_limit = forms.IntegerField(
        label=gettext_lazy("Redemptions per customer at most"),
        required=False,
        min_value=1,
        max_value=COUNT_MAX["per_customer_limit"],
    )
    budget = forms.CharField(label=gettext_lazy("Budget (EUR)"), max_length=20, required=False)
    stacking = forms.ChoiceField(
        label=gettext_lazy("Combining"),
        choices=[
            (Stacking.EXCLUSIVE, gettext_lazy("exclusive")),
            (Stacking.STACKABLE, gettext_lazy("combines with other vouchers")),
        ],
    )
    code_mode = forms.ChoiceField(
        label=gettext_lazy("Codes"),
        choices=[
            (CodeMode.UNIQUE, gettext_lazy("unique codes (generated or imported)")),
            (CodeMode.PUBLIC, gettext_lazy("one public code")),
        ],
    )
    public_code = forms.CharField(
        label=gettext_lazy("Public code"),
        max_length=64,
        required=False,
        help_text=gettext_lazy(
            "Only for one public code. When editing, leave it empty to keep the current code."
        ),
    )
    release_redemption_on_cancel = forms.BooleanField(
        label=gettext_lazy("A cancelled order gives its redemption back"),
        required=False,
        initial=True,
    )
    expected_redemptions_per_hour = forms.IntegerField(
        label=gettext_lazy("Expected redemptions per hour"),
        required=False,
        min_value=1,
        max_value=COUNT_MAX["expected_redemptions_per_hour"],
    )
    auto_pause = forms.BooleanField(
        label=gettext_lazy("The leak monitors may pause the campaign"), required=False, initial=True
    )

    AMOUNTS = ("discount_value", "discount_cap", "min_basket", "max_share", "budget")

    def service_fields(self) -> dict:
        d = dict(self.cleaned_data)
        for f in self.AMOUNTS:
            d[f] = normalise_amount(d[f]) if d.get(f) else None
        for f in ("eligible_categories", "eligible_products"):
            d[f] = [s.strip() for s in (d[f] or "").split(",") if s.strip()]
        return d

    @classmethod
    def initial_for(cls, c: Campaign) -> dict:
        from warenhaus.catalog.models import Category, Product

        def amount(v):
            return f"{v:.2f}" if v is not None else ""

        ids = set(c.eligible_category_ids or [])
        return {
            "name": c.name,
            "purpose": c.purpose,
            "discount_kind": c.discount_kind,
            "discount_value": amount(c.discount_value),
            "discount_cap": amount(c.discount_cap),
            "min_basket": amount(c.min_basket),
            "max_share": amount(c.max_share),
            # stored with their sub-categories: show only the ones that were named
            "eligible_categories": ", ".join(
                x.slug for x in Category.objects.filter(pk__in=ids) if x.parent_id not in ids
            ),
            "eligible_products": ", ".join(
                Product.objects.filter(pk__in=c.eligible_product_ids).values_list("slug", flat=True)
            ),
            "customer_eligibility": c.customer_eligibility,
            "channels": c.channels,
            "valid_from": c.valid_from,
            "valid_until": c.valid_until,
            "total_limit": c.total_limit,
            "per_customer_limit": c.per_customer_limit,
            "budget": amount(c.budget),
            "stacking": c.stacking,
            "code_mode": c.code_mode,
            "release_redemption_on_cancel": c.release_redemption_on_cancel,
            "expected_redemptions_per_hour": c.expected_redemptions_per_hour,
            "auto_pause": c.auto_pause,
        }


class CampaignFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=lambda: [("", _("all"))] + [(s, _status(s)) for s in CampaignStatus.values],
    )


def _status(status: str) -> str:
    return str(
        {
            "draft": gettext_lazy("draft"),
            "approved": gettext_lazy("approved"),
            "paused": gettext_lazy("paused"),
            "revoked": gettext_lazy("revoked"),
        }.get(status, status)
    )


def _error(err: DomainError) -> str:
    if err.code == "reason_required":
        return _("Please give a reason; it goes into the audit trail.")
    if err.code == "invalid_transition":
        return _("This is not possible while the campaign is %(status)s.") % {
            "status": _status(err.extra.get("current_status", ""))
        }
    if err.code in ("validation_error", "invalid_money") and err.extra.get("field"):
        return _("Please check the field “%(field)s”: %(detail)s") % {
            "field": _field_label(err.extra["field"]),
            "detail": err.detail,
        }
    return error_message(err)


def _field_label(name: str) -> str:
    field = CampaignForm.base_fields.get(name)
    return str(field.label) if field is not None else name


def _campaign_or_404(pk) -> Campaign:
    try:
        return selectors.campaign_by_id(pk)
    except NotFound:
        raise Http404 from None


# --- list --------------------------------------------------------------------------------------


@require_GET
@staff_only("promotions.view")
def campaigns_list(request):
    form = CampaignFilterForm(request.GET or None)
    status = form.cleaned_data["status"] if form.is_valid() else ""
    qs = (
        Campaign.objects.select_related("created_by", "approved_by")
        .annotate(
            open_alerts=Count("alerts", filter=_unacknowledged()),
        )
        .order_by("-pk")
    )
    if status:
        qs = qs.filter(status=status)
    counts = dict(Campaign.objects.values_list("status").annotate(n=Count("id")))
    page = _page(request, qs)
    return render(
        request,
        "web/console/promotions/campaigns.html",
        {
            "form": form,
            "page": page,
            "campaigns": page.object_list,
            "status": status,
            "counts": [
                {"status": s, "label": _status(s), "count": counts.get(s, 0)}
                for s in CampaignStatus.values
            ],
            "may_create": can(request.user, "promotions.edit"),
        },
        status=200 if not form.is_bound or form.is_valid() else 400,
    )


def _unacknowledged():
    return Q(alerts__acknowledged_at__isnull=True)


# --- detail ------------------------------------------------------------------------------------


def redemptions_chart(c: Campaign, *, minutes: int = CHART_MINUTES, at=None) -> dict:
    """Bars of redemptions per minute over the last ``minutes`` (an inline SVG like the
    dashboard's orders-per-day chart), with the rate monitor's threshold per minute and the
    expected rate drawn across it."""
    at = at or now()
    end = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=minutes)
    per_minute = dict(
        selectors.redemptions_of(c)
        .filter(created_at__gte=start, created_at__lt=end)
        .annotate(m=TruncMinute("created_at"))
        .values_list("m")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = {
        m.replace(second=0, microsecond=0).timestamp(): n
        for m, n in per_minute.items()
        if m is not None
    }
    rate = monitors.monitor_named("rate")
    threshold = rate.threshold_per_minute(c) if rate.enabled(c) else None
    expected = (c.expected_redemptions_per_hour or 0) / 60 or None
    width, height, gap = 720, 160, 1
    bar = (width - gap * (minutes - 1)) / minutes
    top = max([*counts.values(), threshold or 0, expected or 0, 1]) * 1.1
    bars = []
    for i in range(minutes):
        minute = start + timedelta(minutes=i)
        n = counts.get(minute.timestamp(), 0)
        h = height * n / top
        bars.append(
            {
                "minute": minute,
                "count": n,
                "x": round(i * (bar + gap), 2),
                "w": round(bar, 2),
                "y": round(height - h, 1),
                "h": round(h, 1),
                "label": i % 30 == 0,
            }
        )

    def line(value):
        return round(height - height * value / top, 1) if value else None

    return {
        "bars": bars,
        "busy": [b for b in bars if b["count"]],
        "width": width,
        "height": height,
        "minutes": minutes,
        "hours": minutes // 60,
        "total": sum(counts.values()),
        "peak": max(counts.values(), default=0),
        "threshold": threshold,
        "threshold_y": line(threshold),
        "expected": expected,
        "expected_y": line(expected),
    }


def _codes_summary(c: Campaign) -> list[dict]:
    rows = (
        Code.objects.filter(campaign=c)
        .values("source", "status")
        .annotate(n=Count("id"), uses=Sum("uses"))
        .order_by("source", "status")
    )
    return [{**r, "uses": r["uses"] or 0} for r in rows]


def _monitor_rows(c: Campaign) -> list[dict]:
    """Each monitor with its threshold in force and what it measures right now."""
    at = now()
    out = []
    for m in monitors.MONITORS:
        s = m.settings_for(c)
        row = {
            "name": m.name,
            "label": m.label,
            "enabled": m.enabled(c),
            "window": int(s.get("window_seconds", 0)),
            "shares": m.shares,
        }
        if row["enabled"]:
            r = m.read(c, at)
            scale = 100 if m.shares else 1
            row.update(
                measured=round(r.measured * scale, 1),
                threshold=round(r.threshold * scale, 1),
                tripped=r.tripped,
            )
        out.append(row)
    return out


def _actions(request, c: Campaign) -> dict:
    u = request.user
    live = c.status in (CampaignStatus.APPROVED, CampaignStatus.PAUSED)
    return {
        "pause": c.status == CampaignStatus.APPROVED and can(u, "promotions.block"),
        "resume": c.status == CampaignStatus.PAUSED and can(u, "promotions.approve"),
        "revoke": c.status != CampaignStatus.REVOKED and can(u, "promotions.block"),
        "block_code": live and can(u, "promotions.block"),
        "generate": c.code_mode == CodeMode.UNIQUE
        and c.status != CampaignStatus.REVOKED
        and can(u, "promotions.edit"),
        "edit": c.status == CampaignStatus.DRAFT and can(u, "promotions.edit"),
        "approve": c.status == CampaignStatus.DRAFT and can(u, "promotions.approve"),
    }


def _status_actions(actions: dict) -> list[dict]:
    """The buttons that change the campaign's status, each with its reason field."""
    out = [
        {"name": "pause", "label": _("Pause"), "style": "warning", "required": True},
        {"name": "resume", "label": _("Resume"), "style": "secondary", "required": False},
        {"name": "revoke", "label": _("Revoke for good"), "style": "danger", "required": True},
    ]
    return [a for a in out if actions[a["name"]]]


def _detail(request, c: Campaign, *, status=200, error="", failed="", posted=None):
    public = c.codes.filter(source="public").first()
    actions = _actions(request, c)
    return render(
        request,
        "web/console/promotions/campaign_detail.html",
        {
            "c": c,
            "safe_share": settings.VOUCHER_SAFE_SHARE_OF_MIN_BASKET,
            "status_label": _status(c.status),
            "worst": services.worst_case(c),
            "dangers": services.dangers(c),
            "public_hint": public.display_hint if public else "",
            "codes_summary": _codes_summary(c),
            "chart": redemptions_chart(c),
            "monitor_rows": _monitor_rows(c),
            "alerts": [_alert_row(a) for a in selectors.alerts(campaign=c)[:20]],
            "redemptions": list(selectors.redemptions_of(c).order_by("-created_at", "-pk")[:20]),
            "actions": actions,
            "status_actions": _status_actions(actions),
            "error": error,
            "failed": failed,
            "posted": posted or {},
            "editors": selectors.editors(c),
            "may_ack": can(request.user, "promotions.block"),
        },
        status=status,
    )


@require_GET
@staff_only("promotions.view")
def campaign_detail(request, pk: int):
    return _detail(request, _campaign_or_404(pk))


ACTIONS = {
    "pause": "promotions.block",
    "resume": "promotions.approve",
    "revoke": "promotions.block",
    "block-code": "promotions.block",
    "codes": "promotions.edit",
}


@require_POST
def campaign_action(request, pk: int, action: str):
    if action not in ACTIONS:
        raise Http404
    return staff_only(ACTIONS[action])(_campaign_action)(request, pk, action)


def _campaign_action(request, pk, action):
    c = _campaign_or_404(pk)
    reason = parsing.reason(request.POST.get("reason"), required=False)
    try:
        if action == "pause":
            services.pause_campaign(
                campaign_id=c.pk, actor=request.user, reason=reason, source="console"
            )
            done = _("The campaign has been paused; its codes no longer redeem.")
        elif action == "resume":
            services.resume_campaign(
                campaign_id=c.pk, actor=request.user, reason=reason, source="console"
            )
            done = _("The campaign is running again.")
        elif action == "revoke":
            services.revoke_campaign(
                campaign_id=c.pk, actor=request.user, reason=reason, source="console"
            )
            done = _("The campaign has been revoked for good.")
        elif action == "block-code":
            typed = (request.POST.get("code") or "")[:64]
            if (
                typed.strip()
                and not Code.objects.filter(
                    campaign=c, digest=codelib.digest(codelib.normalise(typed))
                ).exists()
            ):
                raise NotFound(
                    "This code does not belong to this campaign.", code="code_not_in_campaign"
                )
            row = services.block_code(
                code=typed, actor=request.user, reason=reason, source="console"
            )
            done = _("The code %(hint)s has been blocked.") % {"hint": row.display_hint}
        else:
            return _generate(request, c)
    except DomainError as err:
        return _detail(
            request,
            _campaign_or_404(pk),
            status=err.status,
            error=_error(err),
            failed=action,
            posted=request.POST,
        )
    messages.success(request, done)
    return redirect("web:console_campaign", pk=c.pk)


def _generate(request, c):
    try:
        count = int(request.POST.get("count") or "")
    except ValueError:
        count = 0
    try:
        batch, codes = services.generate_codes(
            campaign_id=c.pk, actor=request.user, count=count, source="console"
        )
    except DomainError as err:
        return _detail(
            request,
            _campaign_or_404(c.pk),
            status=err.status,
            error=_error(err),
            failed="codes",
            posted=request.POST,
        )
    response = render(
        request,
        "web/console/promotions/codes_generated.html",
        {"c": c, "batch": batch, "codes": codes, "text": "\n".join(codes)},
        status=201,
    )
    response["Cache-Control"] = "no-store"  # shown once: no copy in any cache
    return response


# --- create and edit ---------------------------------------------------------------------------


def _form_page(request, form, *, c=None, status=200, error=""):
    return render(
        request,
        "web/console/promotions/campaign_form.html",
        {"form": form, "c": c, "error": error},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@staff_only("promotions.edit")
def campaign_new(request):
    if request.method == "GET":
        return _form_page(request, CampaignForm())
    form = CampaignForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form, status=422, error=_("Please correct the marked fields."))
    fields = form.service_fields()
    if not fields["valid_from"]:
        fields.pop("valid_from")
    try:
        c = services.create_campaign(actor=request.user, source="console", **fields)
    except DomainError as err:
        return _form_page(request, form, status=err.status, error=_error(err))
    messages.success(
        request,
        _(
            "The campaign has been saved as a draft. Someone else must approve it before its codes redeem."
        ),
    )
    return redirect("web:console_campaign", pk=c.pk)


@require_http_methods(["GET", "POST"])
@staff_only("promotions.edit")
def campaign_edit(request, pk: int):
    c = _campaign_or_404(pk)
    if c.status != CampaignStatus.DRAFT:
        return _detail(request, c, status=409, error=_not_editable(c))
    if request.method == "GET":
        return _form_page(request, CampaignForm(initial=CampaignForm.initial_for(c)), c=c)
    form = CampaignForm(request.POST)
    if not form.is_valid():
        return _form_page(
            request, form, c=c, status=422, error=_("Please correct the marked fields.")
        )
    changes = form.service_fields()
    if not changes["valid_from"]:
        changes.pop("valid_from")
    try:
        editing.update_campaign(
            campaign_id=c.pk, actor=request.user, changes=changes, source="console"
        )
    except DomainError as err:
        if err.code == "campaign_not_editable":
            return _detail(request, _campaign_or_404(pk), status=err.status, error=_error(err))
        return _form_page(request, form, c=c, status=err.status, error=_error(err))
    messages.success(request, _("The draft has been saved."))
    return redirect("web:console_campaign", pk=c.pk)


def _not_editable(c):
    return error_message(DomainError(code="campaign_not_editable", current_status=c.status))


# --- approval ----------------------------------------------------------------------------------


def _approval_page(request, c, *, status=200, error=""):
    return render(
        request,
        "web/console/promotions/approve.html",
        {
            "c": c,
            "safe_share": settings.VOUCHER_SAFE_SHARE_OF_MIN_BASKET,
            "worst": services.worst_case(c),
            "dangers": services.dangers(c),
            "error": error,
            "own": c.created_by_id == request.user.pk or bool(selectors.part_of(c, request.user)),
            "editors": selectors.editors(c),
            "is_draft": c.status == CampaignStatus.DRAFT,
            "status_label": _status(c.status),
            "override_reason": (request.POST.get("override_reason") or "")
            if request.method == "POST"
            else "",
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@staff_only("promotions.approve")
def campaign_approve(request, pk: int):
    c = _campaign_or_404(pk)
    if request.method == "GET":
        return _approval_page(request, c)
    reason = parsing.reason(request.POST.get("override_reason"), required=False)
    try:
        services.approve_campaign(
            campaign_id=c.pk, actor=request.user, override_reason=reason, source="console"
        )
    except DomainError as err:
        return _approval_page(request, _campaign_or_404(pk), status=err.status, error=_error(err))
    messages.success(request, _("The campaign has been approved; its codes redeem from now on."))
    return redirect("web:console_campaign", pk=c.pk)


# --- alerts ------------------------------------------------------------------------------------


def _alert_row(a) -> dict:
    """An alert as the tables show it: its sentence and monitor in the reader's language, and
    measured value and threshold as percentages for the monitors that measure shares."""
    m = monitors.monitor_named(a.monitor)
    scale = 100 if m is not None and m.shares else 1
    return {
        "a": a,
        "text": selectors.alert_text(a),
        "label": monitors.monitor_label(a.monitor),
        "percent": scale == 100,
        "measured": round(a.measured * scale, 1),
        "threshold": round(a.threshold * scale, 1),
    }


@require_GET
@staff_only("promotions.view")
def alerts_list(request):
    show_all = request.GET.get("all") == "1"
    qs = selectors.alerts() if show_all else selectors.alerts(acknowledged=False)
    page = _page(request, qs)
    return render(
        request,
        "web/console/promotions/alerts.html",
        {
            "page": page,
            "show_all": show_all,
            "may_ack": can(request.user, "promotions.block"),
            "alerts": [_alert_row(a) for a in page.object_list],
        },
    )


@require_POST
@staff_only("promotions.block")
def alert_acknowledge(request, pk: int):
    try:
        alert = services.acknowledge_alert(alert_id=pk, actor=request.user, source="console")
    except DomainError as err:
        if err.code == "alert_not_found":
            raise Http404 from None
        messages.error(request, _error(err))
        return redirect("web:console_alerts")
    messages.success(
        request, _("The alert on “%(name)s” has been acknowledged.") % {"name": alert.campaign.name}
    )
    back = request.POST.get("next") or ""
    if back == "campaign":
        return redirect("web:console_campaign", pk=alert.campaign_id)
    return redirect("web:console_alerts")


# --- kill switch -------------------------------------------------------------------------------


def _kill_page(request, *, status=200, error="", result=None):
    return render(
        request,
        "web/console/promotions/kill_switch.html",
        {
            "rules": list(
                BlockRule.objects.filter(is_active=True)
                .select_related("created_by")
                .order_by("-pk")[:50]
            ),
            "error": error,
            "result": result,
            "posted": request.POST if request.method == "POST" else {},
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@staff_only("promotions.block")
def kill_switch(request):
    if request.method == "GET":
        return _kill_page(request)
    try:
        result = services.block_pattern(
            pattern=(request.POST.get("pattern") or "")[:40],
            actor=request.user,
            reason=(request.POST.get("reason") or "")[:2000],
            source="console",
        )
    except DomainError as err:
        return _kill_page(request, status=err.status, error=_error(err))
    messages.success(
        request,
        _(
            "Every code starting with %(prefix)s is blocked now and when typed later (%(n)s stored codes blocked)."
        )
        % {"prefix": result["pattern"][:-1], "n": result["blocked"]},
    )
    return redirect("web:console_kill_switch")
