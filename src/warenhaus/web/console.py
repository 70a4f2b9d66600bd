"""The operator console: orders, products, prices, stock and the audit trail.

Who may enter is decided by :mod:`warenhaus.accounts.roles`: ``console.access`` for the console
itself, one capability per action. Anonymous visitors are sent to the login page; a logged-in
person without the capability gets a 403 page. Buttons a person may not use are not shown,
but every action checks again on the server.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from warenhaus.accounts.roles import can
from warenhaus.catalog import selectors as catalog_selectors
from warenhaus.catalog import services as catalog
from warenhaus.catalog.models import Category
from warenhaus.core.errors import DomainError
from warenhaus.orders import selectors as order_selectors
from warenhaus.orders import services as orders
from warenhaus.orders.models import OrderStatus

from . import forms, lookups
from .messages_map import error_message

PAGE_SIZE = 25


def forbidden(request, message: str = ""):
    return render(
        request,
        "403.html",
        {"message": message or _("You are not allowed to do this.")},
        status=403,
    )


def staff_only(capability: str | None = None):
    """Require console access and, if given, one capability."""

    def decorate(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("web:login"))
            if not can(request.user, "console.access"):
                return forbidden(request, _("The operator console is for staff only."))
            if capability and not can(request.user, capability):
                return forbidden(request, _("Your role does not include this action."))
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def _page(request, qs):
    return Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))


# --- dashboard -------------------------------------------------------------------------------


@require_GET
@staff_only()
def dashboard(request):
    ctx = {}
    if can(request.user, "orders.view_all"):
        counts = lookups.order_counts_by_status()
        ctx["status_counts"] = [
            {"status": s.value, "label": s.label, "count": counts.get(s.value, 0)}
            for s in OrderStatus
        ]
        ctx["max_count"] = max(counts.values(), default=0) or 1
        ctx["on_hold"] = list(order_selectors.staff_orders(status=OrderStatus.ON_HOLD)[:10])
        ctx["daily"] = _daily_chart(order_selectors.daily_totals(days=14))
    if can(request.user, "audit.view"):
        ctx["recent_audit"] = list(lookups.audit_entries()[:10])
    return render(request, "web/console/dashboard.html", ctx)


def _daily_chart(days: list[dict]) -> dict:
    """Bar geometry for the dashboard's orders-per-day chart (an inline SVG, no JavaScript)."""
    width, height, gap = 560, 140, 6
    bar = (width - gap * (len(days) - 1)) / max(1, len(days))
    top = max((d["count"] + d["cancelled"] for d in days), default=0) or 1
    bars = []
    for i, d in enumerate(days):
        h_ok = height * d["count"] / top
        h_cancel = height * d["cancelled"] / top
        bars.append(
            {
                **d,
                "x": round(i * (bar + gap), 1),
                "w": round(bar, 1),
                "y": round(height - h_ok, 1),
                "h": round(h_ok, 1),
                "cy": round(height - h_ok - h_cancel, 1),
                "ch": round(h_cancel, 1),
            }
        )
    return {
        "bars": bars,
        "width": width,
        "height": height,
        "top": top,
        "total": sum(d["count"] for d in days),
        "value": sum(d["value"] for d in days),
    }


# --- orders ----------------------------------------------------------------------------------


@require_GET
@staff_only("orders.view_all")
def orders_list(request):
    form = forms.OrderFilterForm(request.GET or None)
    filters = {}
    status = 200
    if form.is_bound and not form.is_valid():
        status = 400
    elif form.is_bound:
        d = form.cleaned_data
        start, end = lookups.day_range(d.get("placed_from"), d.get("placed_to"))
        filters = {
            "status": d.get("status") or "",
            "q": d.get("q") or "",
            "placed_from": start,
            "placed_to": end,
        }
    qs = (
        order_selectors.staff_orders(**filters)
        if status == 200
        else order_selectors.staff_orders().none()
    )
    page = _page(request, qs)
    return render(
        request,
        "web/console/orders.html",
        {"form": form, "page": page, "orders": page.object_list},
        status=status,
    )


def _order_actions(request, order) -> list[dict]:
    """The actions this person may take on this order in its current status."""
    allowed = orders.TRANSITIONS.get(order.status, set())
    out = []
    if order.status == OrderStatus.ON_HOLD:
        if can(request.user, "orders.release"):
            out.append({"name": "release", "label": _("Release hold"), "style": "secondary"})
    elif OrderStatus.ON_HOLD in allowed and can(request.user, "orders.hold"):
        out.append({"name": "hold", "label": _("Put on hold"), "style": "warning"})
    if OrderStatus.SHIPPED in allowed and can(request.user, "orders.ship"):
        out.append({"name": "ship", "label": _("Mark as shipped"), "style": "primary"})
    if order.status in orders.UNSHIPPED and can(request.user, "orders.cancel"):
        out.append({"name": "cancel", "label": _("Cancel order"), "style": "danger"})
    return out


def _order_detail(request, order, *, status=200, error="", failed_action="", form=None):
    return render(
        request,
        "web/console/order_detail.html",
        {
            "order": order,
            "actions": _order_actions(request, order),
            "error": error,
            "failed_action": failed_action,
            "reason_form": form,
            "audit": list(
                lookups.audit_entries(object_type="orders.order", object_id=order.number)[:50]
            )
            if can(request.user, "audit.view")
            else None,
        },
        status=status,
    )


@require_GET
@staff_only("orders.view_all")
def order_detail(request, number: str):
    order = order_selectors.order_by_number(number)
    if order is None:
        raise Http404
    return _order_detail(request, order)


ORDER_ACTIONS = {
    "cancel": ("orders.cancel", orders.cancel),
    "hold": ("orders.hold", orders.hold),
    "release": ("orders.release", orders.release),
    "ship": ("orders.ship", orders.ship),
}


@require_POST
def order_action(request, number: str, action: str):
    if action not in ORDER_ACTIONS:
        raise Http404
    capability, service = ORDER_ACTIONS[action]
    return staff_only(capability)(_order_action)(request, number, action, service)


def _order_action(request, number, action, service):
    order = order_selectors.order_by_number(number)
    if order is None:
        raise Http404
    form = forms.ReasonForm(request.POST)
    if not form.is_valid():
        return _order_detail(
            request,
            order,
            status=422,
            error=_("Please give a reason; it goes into the order history and the audit trail."),
            failed_action=action,
            form=form,
        )
    try:
        extra = {"customer_note": form.cleaned_data["customer_note"]} if action == "cancel" else {}
        service(
            number=number,
            actor=request.user,
            reason=form.cleaned_data["reason"],
            source="console",
            **extra,
        )
    except DomainError as err:
        order = order_selectors.order_by_number(number)
        return _order_detail(
            request,
            order,
            status=err.status,
            error=error_message(err),
            failed_action=action,
            form=form,
        )
    messages.success(request, _done_message(action) % {"number": number})
    return redirect("web:console_order", number=number)


def _done_message(action: str) -> str:
    """Said after an action succeeded, in the request's language."""
    return {
        "cancel": _("Order %(number)s has been cancelled."),
        "hold": _("Order %(number)s is on hold."),
        "release": _("The hold on order %(number)s has been released."),
        "ship": _("Order %(number)s is marked as shipped."),
    }[action]


# --- products, prices, stock -----------------------------------------------------------------


@require_GET
@staff_only()
def products_list(request):
    q = (request.GET.get("q") or "").strip()[:100]
    page = _page(request, catalog_selectors.search(q=q, include_inactive=True))
    return render(
        request, "web/console/products.html", {"q": q, "page": page, "products": page.object_list}
    )


def _categories():
    return list(Category.objects.order_by("position", "name"))


def _product_page(
    request, product, *, form=None, status=200, error="", price_errors=None, stock_errors=None
):
    if form is None:
        form = forms.ProductForm(
            categories=_categories(),
            initial={
                "title": product.title,
                "brand": product.brand,
                "description": product.description,
                "category": product.category.slug,
                "vat_rate": f"{product.vat_rate:.0f}",
                "is_active": product.is_active,
            },
        )
    variants = [{"variant": v, "stock": getattr(v, "stock", None)} for v in product.variants.all()]
    return render(
        request,
        "web/console/product_edit.html",
        {
            "product": product,
            "form": form,
            "variants": variants,
            "error": error,
            "price_errors": price_errors or {},
            "stock_errors": stock_errors or {},
            "may_edit": can(request.user, "catalog.edit"),
            "may_price": can(request.user, "price.edit"),
            "may_stock": can(request.user, "stock.edit"),
        },
        status=status,
    )


def _product_or_404(slug):
    product = catalog_selectors.product_by_slug(slug, include_inactive=True)
    if product is None:
        raise Http404
    return product


@require_GET
@staff_only()
def product_edit(request, slug: str):
    return _product_page(request, _product_or_404(slug))


@require_POST
@staff_only("catalog.edit")
def product_update(request, slug: str):
    product = _product_or_404(slug)
    form = forms.ProductForm(request.POST, categories=_categories())
    if not form.is_valid():
        return _product_page(
            request, product, form=form, status=422, error=_("Please correct the marked fields.")
        )
    try:
        catalog.update_product(
            actor=request.user, slug=slug, changes=form.changes(), source="console"
        )
    except DomainError as err:
        return _product_page(
            request, _product_or_404(slug), form=form, status=err.status, error=error_message(err)
        )
    messages.success(request, _("The product has been saved."))
    return redirect("web:console_product", slug=slug)


def _variant_product(sku: str):
    from warenhaus.catalog.models import Variant

    variant = Variant.objects.select_related("product").filter(sku=sku).first()
    if variant is None:
        raise Http404
    return variant, _product_or_404(variant.product.slug)


@require_POST
@staff_only("price.edit")
def variant_price(request, sku: str):
    variant, product = _variant_product(sku)
    form = forms.PriceForm(request.POST)
    if not form.is_valid():
        return _product_page(
            request,
            product,
            status=422,
            error=_("Please enter a valid price."),
            price_errors={sku: form.errors},
        )
    try:
        catalog.set_price(
            actor=request.user,
            sku=sku,
            amount=form.cleaned_data["amount"],
            reason=form.cleaned_data["reason"],
            source="console",
        )
    except DomainError as err:
        return _product_page(request, product, status=err.status, error=error_message(err))
    messages.success(request, _("The price of %(sku)s has been changed.") % {"sku": sku})
    return redirect("web:console_product", slug=product.slug)


@require_POST
@staff_only("stock.edit")
def variant_stock(request, sku: str):
    variant, product = _variant_product(sku)
    form = forms.StockForm(request.POST)
    if not form.is_valid():
        return _product_page(
            request,
            product,
            status=422,
            error=_("Please enter a whole number of units (0 or more)."),
            stock_errors={sku: form.errors},
        )
    try:
        catalog.set_stock(
            actor=request.user,
            sku=sku,
            on_hand=form.cleaned_data["on_hand"],
            reason=form.cleaned_data["reason"],
            source="console",
        )
    except DomainError as err:
        return _product_page(request, product, status=err.status, error=error_message(err))
    messages.success(request, _("The stock of %(sku)s has been changed.") % {"sku": sku})
    return redirect("web:console_product", slug=product.slug)


# --- audit trail -----------------------------------------------------------------------------


@require_GET
@staff_only("audit.view")
def audit_list(request):
    form = forms.AuditFilterForm(request.GET or None)
    status = 200
    filters = {}
    if form.is_bound and not form.is_valid():
        status = 400
    elif form.is_bound:
        d = form.cleaned_data
        filters = {
            "actor_email": d["actor"],
            "action": d["action"],
            "object_type": d["object_type"],
            "object_id": d["object_id"],
            "day_from": d["day_from"],
            "day_to": d["day_to"],
        }
    qs = lookups.audit_entries(**filters) if status == 200 else lookups.audit_entries().none()
    page = _page(request, qs)
    return render(
        request,
        "web/console/audit.html",
        {
            "form": form,
            "page": page,
            "entries": page.object_list,
            "actions": lookups.audit_actions(),
            "object_types": lookups.audit_object_types(),
        },
        status=status,
    )
