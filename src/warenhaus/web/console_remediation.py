"""The remediation part of the operator console: the jobs, the wizard that chooses orders and
actions and shows what executing would mean (a dry-run job of :mod:`warenhaus.remediation`),
the execute step, and the job's page with its live progress and CSV export.

Like the rest of the console: every view checks its capability on the server
(:func:`.console.staff_only`); previewing needs ``remediation.preview``, executing
``remediation.run``. The views parse the form, call one service and show its refusals as
translated sentences next to the form, which keeps what was typed. The progress bar is
refreshed by htmx polling a fragment while the job is queued or running; without JavaScript
the page refreshes itself (``<noscript>`` meta refresh) and has a refresh link.
"""

from __future__ import annotations

import uuid

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from warenhaus.accounts.roles import can
from warenhaus.core.errors import DomainError
from warenhaus.core.idempotency import Replay, run_idempotent
from warenhaus.promotions.models import Campaign
from warenhaus.remediation import selectors, services
from warenhaus.remediation.models import Job, JobState

from .console import _page, staff_only
from .console_promotions import _DT
from .console_promotions import _status as campaign_status
from .forms import normalise_amount
from .messages_map import error_message
from .templatetags.shop import format_money

STATES = {
    JobState.PREVIEW: pgettext_lazy("remediation state", "preview"),
    JobState.QUEUED: pgettext_lazy("remediation state", "queued"),
    JobState.RUNNING: pgettext_lazy("remediation state", "running"),
    JobState.DONE: pgettext_lazy("remediation state", "done"),
    JobState.FAILED: pgettext_lazy("remediation state", "failed"),
}
PHASES = {
    "orders": pgettext_lazy("remediation phase", "orders"),
    "customers": pgettext_lazy("remediation phase", "customers"),
}
ACTIVE = (JobState.QUEUED, JobState.RUNNING)
CAMPAIGN_CHOICES = 500


# --- the wizard's form -------------------------------------------------------------------------


def _campaign_choices():
    rows = Campaign.objects.order_by("-pk").values_list("pk", "name", "status")[:CAMPAIGN_CHOICES]
    return [("", _("– none –"))] + [
        (pk, f"{name} (#{pk}, {campaign_status(status)})") for pk, name, status in rows
    ]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class JobForm(forms.Form):
    """Which orders (step 1) and what to do with them (step 2). The rules are the service's
    (:mod:`warenhaus.remediation.selection`); the form turns text into its shape."""

    voucher_codes = forms.CharField(
        label=gettext_lazy("Voucher codes (one per line)"),
        required=False,
        max_length=70_000,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
    )
    campaign = forms.TypedChoiceField(
        label=gettext_lazy("and/or every code of a campaign"),
        required=False,
        coerce=int,
        empty_value=None,
        choices=_campaign_choices,
    )
    sku = forms.CharField(label=gettext_lazy("SKU"), required=False, max_length=64)
    unit_price_below = forms.CharField(
        label=gettext_lazy("sold below this unit price (EUR)"), required=False, max_length=20
    )
    order_numbers = forms.CharField(
        label=gettext_lazy("Order numbers (one per line)"),
        required=False,
        max_length=2_500_000,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
    )
    placed_from = forms.DateTimeField(label=gettext_lazy("Placed from"), required=False, **_DT)
    placed_to = forms.DateTimeField(label=gettext_lazy("Placed until"), required=False, **_DT)
    action = forms.ChoiceField(
        label=gettext_lazy("The orders that have not shipped"),
        required=False,
        widget=forms.RadioSelect,
        initial="cancel",
        choices=[
            ("cancel", gettext_lazy("cancel them")),
            ("hold", gettext_lazy("put them on hold")),
            ("", gettext_lazy("leave them as they are")),
        ],
    )
    notify = forms.BooleanField(
        label=gettext_lazy("Tell each affected customer once, in one mail"),
        required=False,
        initial=True,
    )
    goodwill_amount = forms.CharField(
        label=gettext_lazy("Goodwill voucher per customer (EUR, optional)"),
        required=False,
        max_length=20,
        help_text=gettext_lazy("A single-use code in the customer's mail; it implies the mail."),
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason (internal: order history and audit trail)"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={
            "required": gettext_lazy(
                "Please give a reason; it goes into the order history and the audit trail."
            )
        },
    )
    customer_note = forms.CharField(
        label=gettext_lazy("Note to the customers (optional, added to the apology)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean(self):
        d = super().clean()
        sku, floor = (d.get("sku") or "").strip(), (d.get("unit_price_below") or "").strip()
        if floor and not sku:
            self.add_error("sku", _("Give the SKU whose price was wrong."))
        if sku and not floor:
            self.add_error(
                "unit_price_below", _("Give the unit price below which a sale was a mistake.")
            )
        return d

    def selector(self) -> dict:
        d = self.cleaned_data
        out: dict = {}
        if _lines(d["voucher_codes"]):
            out["voucher_codes"] = _lines(d["voucher_codes"])
        if d["campaign"]:
            out["campaigns"] = [d["campaign"]]
        if d["sku"].strip():
            out["sku"], out["unit_price_below"] = (
                d["sku"].strip(),
                normalise_amount(d["unit_price_below"]),
            )
        if _lines(d["order_numbers"]):
            out["order_numbers"] = _lines(d["order_numbers"])
        for f in ("placed_from", "placed_to"):
            if d[f]:
                out[f] = d[f].isoformat()
        return out

    def actions(self) -> list:
        d = self.cleaned_data
        out: list = [d["action"]] if d["action"] else []
        if d["notify"]:
            out.append("notify")
        if d["goodwill_amount"].strip():
            out.append({"goodwill_voucher": {"amount": normalise_amount(d["goodwill_amount"])}})
        return out


#: the service's field names -> the form's
FIELDS = {
    "voucher_codes": "voucher_codes",
    "campaigns": "campaign",
    "sku": "sku",
    "unit_price_below": "unit_price_below",
    "order_numbers": "order_numbers",
    "placed_from": "placed_from",
    "placed_to": "placed_to",
    "goodwill_voucher.amount": "goodwill_amount",
}
CODE_FIELDS = {
    "unknown_voucher_code": "voucher_codes",
    "campaign_not_found": "campaign",
    "goodwill_too_large": "goodwill_amount",
    "invalid_actions": "action",
    "conflicting_actions": "action",
}


def _error(err: DomainError, form: JobForm) -> str:
    """The refusal as a sentence, also put next to the field it is about."""
    field = FIELDS.get(err.extra.get("field")) or CODE_FIELDS.get(err.code)
    if err.code == "unknown_voucher_code" and isinstance(err.extra.get("index"), int):
        codes = _lines(form.cleaned_data.get("voucher_codes", ""))
        typed = codes[err.extra["index"]] if err.extra["index"] < len(codes) else ""
        text = _("“%(code)s” is not a voucher code of this shop. Please check it.") % {
            "code": typed[:64]
        }
    elif err.code == "invalid_selector" and field == "placed_to":
        text = _("“Placed until” is before “placed from”.")
    elif err.code == "invalid_selector" and field == "order_numbers":
        text = _("Order numbers look like WH-7K3M9QX2, one per line (at most 100,000).")
    elif err.code == "invalid_selector" and field == "voucher_codes":
        text = _("Please enter at most 1,000 voucher codes, one per line.")
    elif err.code == "invalid_selector" and field:
        text = _("Please check the field “%(field)s”.") % {"field": form.fields[field].label}
    else:
        text = error_message(err)
    if field and field in form.fields:
        form.add_error(field, text)
    return text


def _create(request, form: JobForm, token: str) -> int:
    """The dry-run job, once per form shown (a double submit finds the job of the first)."""
    body = {
        "selector": form.selector(),
        "actions": form.actions(),
        "reason": form.cleaned_data["reason"],
        "customer_note": form.cleaned_data["customer_note"],
    }

    def work():
        job = services.create_job(actor=request.user, dry_run=True, source="console", **body)
        return 201, {"id": job.pk}

    if not token:
        return work()[1]["id"]
    try:
        return run_idempotent(
            scope=f"console.remediation:{request.user.pk}", key=token, payload=body, work=work
        )[1]["id"]
    except Replay as replay:
        if "id" in replay.body:
            return replay.body["id"]
        problem = dict(replay.body)
        raise DomainError(
            problem.pop("detail", ""),
            code=problem.pop("code", None),
            status=problem.pop("status", 400),
            **{k: v for k, v in problem.items() if k not in ("type", "title")},
        ) from None
    except DomainError as err:
        if err.code != "idempotency_key_reused":
            raise
        return work()[1]["id"]  # the form was changed after going back: a new preview


def _wizard(request, form, *, status=200, error=""):
    return render(
        request,
        "web/console/remediation/new.html",
        {
            "form": form,
            "error": error,
            "token": uuid.uuid4().hex,
            "goodwill_max": format_money(settings.REMEDIATION_GOODWILL_MAX),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@staff_only("remediation.preview")
def job_new(request):
    if request.method == "GET":
        campaign = request.GET.get("campaign", "")
        initial = (
            {"campaign": int(campaign)}
            if campaign.isdigit() and Campaign.objects.filter(pk=int(campaign)).exists()
            else {}
        )
        return _wizard(request, JobForm(initial=initial))
    form = JobForm(request.POST)
    if not form.is_valid():
        return _wizard(request, form, status=422, error=_("Please correct the marked fields."))
    try:
        job_id = _create(request, form, (request.POST.get("token") or "")[:64])
    except DomainError as err:
        return _wizard(request, form, status=err.status, error=_error(err, form))
    return redirect("web:console_remediation", pk=job_id)


# --- the jobs ----------------------------------------------------------------------------------


def _job_or_404(pk) -> Job:
    try:
        return services.get_job(pk)
    except DomainError:
        raise Http404 from None


def confirmation(job: Job) -> str:
    """What executing will do, in plain words: "cancel 3 orders, notify 2 customers and issue 2
    vouchers of 10,00 €" (numbers of the preview)."""
    p, a = job.preview or {}, job.actions or {}
    affected = p.get("affected") or {}
    orders, customers = affected.get("orders", 0), affected.get("customers", 0)
    parts = []
    if a.get("cancel"):
        parts.append(ngettext("cancel %(n)s order", "cancel %(n)s orders", orders) % {"n": orders})
    elif a.get("hold"):
        parts.append(
            ngettext("put %(n)s order on hold", "put %(n)s orders on hold", orders) % {"n": orders}
        )
    if a.get("notify"):
        parts.append(
            ngettext("notify %(n)s customer", "notify %(n)s customers", customers)
            % {"n": customers}
        )
    goodwill = p.get("goodwill")
    if goodwill:
        n = goodwill["vouchers"]
        parts.append(
            ngettext("issue %(n)s voucher of %(amount)s", "issue %(n)s vouchers of %(amount)s", n)
            % {"n": n, "amount": format_money(goodwill["amount_each"])}
        )
    if len(parts) > 1:
        return _("%(first)s and %(last)s") % {"first": ", ".join(parts[:-1]), "last": parts[-1]}
    return parts[0] if parts else ""


def _selection(job: Job) -> dict:
    """The stored selector, ready to show (codes only by their hints)."""
    s = job.selector or {}
    ids = s.get("campaigns") or []
    return {
        "codes": [c["hint"] for c in s.get("codes") or []],
        "campaigns": list(Campaign.objects.filter(pk__in=ids).values("pk", "name")) if ids else [],
        "sku": s.get("sku"),
        "unit_price_below": s.get("unit_price_below"),
        "order_numbers": s.get("order_numbers") or [],
        "placed_from": parse_datetime(s["placed_from"]) if s.get("placed_from") else None,
        "placed_to": parse_datetime(s["placed_to"]) if s.get("placed_to") else None,
    }


def _live(request, job: Job) -> dict:
    """What the progress fragment shows (and what it polls for)."""
    counts = [
        ("cancelled", _("cancelled"), job.cancelled),
        ("held", _("put on hold"), job.held),
        ("noted", _("left as they are, customer told"), job.noted),
        ("out_of_reach", _("already shipped, out of reach"), job.out_of_reach),
        ("unchanged", _("nothing to do"), job.unchanged),
        ("notified", _("customers notified"), job.notified),
        ("vouchers_issued", _("goodwill vouchers issued"), job.vouchers_issued),
    ]
    return {
        "job": job,
        "active": job.state in ACTIVE,
        "state_label": STATES.get(job.state, job.state),
        "phase_label": PHASES.get(job.phase, job.phase),
        "counts": counts,
        "may_run": can(request.user, "remediation.run"),
    }


def _job_page(request, job: Job, *, status=200, error=""):
    four_eyes = bool(job.actions.get("goodwill_amount")) and job.created_by_id == request.user.pk
    return render(
        request,
        "web/console/remediation/job.html",
        {
            **_live(request, job),
            "four_eyes": four_eyes and job.state == JobState.PREVIEW,
            "four_eyes_text": EXECUTE_ERRORS["four_eyes_required"],
            "p": job.preview or {},
            "selection": _selection(job),
            "confirmation": confirmation(job),
            "error": error,
            "sample": [
                {**s, "placed_at": parse_datetime(s["placed_at"])}
                for s in (job.preview or {}).get("sample", [])
            ],
            "here": f"#{job.pk}",
            "may_see_campaigns": can(request.user, "promotions.view"),
            "may_see_orders": can(request.user, "orders.view_all"),
        },
        status=status,
    )


@require_GET
@staff_only("remediation.preview")
def jobs_list(request):
    state = request.GET.get("state", "")
    qs = Job.objects.select_related("created_by", "executed_by")
    if state in STATES:
        qs = qs.filter(state=state)
    page = _page(request, qs)
    return render(
        request,
        "web/console/remediation/jobs.html",
        {
            "page": page,
            "state": state,
            "states": list(STATES.items()),
            "jobs": [
                {"job": j, "state_label": STATES.get(j.state, j.state), "active": j.state in ACTIVE}
                for j in page.object_list
            ],
        },
    )


@require_GET
@staff_only("remediation.preview")
def job_detail(request, pk: int):
    return _job_page(request, _job_or_404(pk))


@require_GET
@staff_only("remediation.preview")
def job_progress(request, pk: int):
    """The live part of the job's page; htmx swaps it in every second while the job runs."""
    return render(request, "web/console/remediation/_live.html", _live(request, _job_or_404(pk)))


EXECUTE_ERRORS = {
    "four_eyes_required": gettext_lazy(
        "You prepared this clean-up, and it gives goodwill vouchers: another support or risk colleague must execute it (four eyes)."
    ),
    "preview_outdated": gettext_lazy(
        "Since the preview, more customers are affected. The preview has been updated: please look at it again, then execute."
    ),
}


@require_POST
@staff_only("remediation.run")
def job_execute(request, pk: int):
    job = _job_or_404(pk)
    if job.state == JobState.PREVIEW and request.POST.get("confirm") != "yes":
        return _job_page(
            request, job, status=422, error=_("Please tick the box to confirm what will happen.")
        )
    try:
        job, started = services.execute(job_id=job.pk, actor=request.user, source="console")
    except DomainError as err:
        # a refused execution may have updated the preview (preview_outdated): show it afresh
        return _job_page(
            request,
            _job_or_404(pk),
            status=err.status,
            error=str(EXECUTE_ERRORS.get(err.code) or error_message(err)),
        )
    if started:
        messages.success(request, _("The job has been started. This page shows its progress."))
    else:
        messages.info(request, _("This job had been started already; nothing was done twice."))
    return redirect("web:console_remediation", pk=job.pk)


@require_GET
@staff_only("remediation.preview")
def job_csv(request, pk: int):
    job = _job_or_404(pk)
    response = StreamingHttpResponse(
        selectors.csv_rows(job), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="remediation-{job.pk}.csv"'
    return response
