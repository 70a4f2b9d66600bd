"""The storefront: browsing, the cart, checkout, the shopper's orders and logging in.

Views are thin: parse a form, call one service, render. A refusal from a service
(:class:`DomainError`) is shown on the page it came from, with the error's 4xx status.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from warenhaus.accounts import devices, login_links
from warenhaus.accounts import services as accounts
from warenhaus.catalog import selectors as catalog
from warenhaus.checkout import services as checkout
from warenhaus.checkout.models import CartStatus
from warenhaus.checkout.shipping import METHODS
from warenhaus.core.channels import Channel
from warenhaus.core.errors import DomainError
from warenhaus.orders import selectors as order_selectors

from . import forms, lookups
from .messages_map import error_message, minutes_to_wait

SESSION_CART = "cart_id"
SESSION_ORDERS = "placed_orders"
MAX_REMEMBERED_ORDERS = 20
PAGE_SIZE = 24


# --- the cart in the session -----------------------------------------------------------------


def current_cart(request, *, create: bool = False):
    """The cart this visitor works with: the one named in the session if it is still open and
    theirs, else the shopper's open cart, else (only if ``create``) a new one."""
    user = request.user if request.user.is_authenticated else None
    cart_id = request.session.get(SESSION_CART)
    if cart_id:
        try:
            cart = checkout.get_cart(cart_id=cart_id, user=user)
        except DomainError:
            cart = None
        if cart is not None and cart.status == CartStatus.OPEN:
            return cart
        request.session.pop(SESSION_CART, None)
    cart = lookups.open_cart_of(user)
    if cart is None and create:
        cart, _created = checkout.create_cart(user=user)
    if cart is not None:
        request.session[SESSION_CART] = cart.id
    return cart


def remember_order(request, number: str) -> None:
    numbers = [n for n in request.session.get(SESSION_ORDERS, []) if n != number]
    numbers.append(number)
    request.session[SESSION_ORDERS] = numbers[-MAX_REMEMBERED_ORDERS:]


def may_see_order(request, order) -> bool:
    if order is None:
        return False
    if request.user.is_authenticated and order.user_id == request.user.pk:
        return True
    return order.number in request.session.get(SESSION_ORDERS, [])


def _safe_next(request, fallback: str) -> str:
    nxt = request.POST.get("next") or request.GET.get("next") or ""
    if nxt and url_has_allowed_host_and_scheme(
        nxt, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return nxt
    return fallback


def _page(request, qs, size=PAGE_SIZE):
    return Paginator(qs, size).get_page(request.GET.get("page"))


# --- browsing --------------------------------------------------------------------------------


@require_GET
def home(request):
    categories = catalog.categories_tree()
    # A few products from each main category, so the front page shows the range of the store.
    products = [p for c in categories[:6] for p in catalog.search(category=c.slug)[:2]] or list(
        catalog.search()[:8]
    )
    return render(request, "web/home.html", {"categories": categories, "products": products})


@require_GET
def category(request, slug: str):
    cat = lookups.category_by_slug(slug)
    if cat is None:
        raise Http404
    page = _page(request, catalog.search(category=slug))
    return render(
        request, "web/category.html", {"category": cat, "page": page, "products": page.object_list}
    )


@require_GET
def search(request):
    q = (request.GET.get("q") or "").strip()[:100]
    page = _page(request, catalog.search(q=q)) if q else None
    return render(
        request,
        "web/search.html",
        {"q": q, "page": page, "products": page.object_list if page else []},
    )


def _product_context(product, form=None):
    variants = list(product.variants.all())
    rows = [{"variant": v, "available": catalog.variant_available(v)} for v in variants]
    buyable = [r for r in rows if r["available"] > 0]
    return {
        "product": product,
        "variants": rows,
        "form": form
        or forms.AddToCartForm(
            initial={"sku": (buyable or rows)[0]["variant"].sku if rows else "", "quantity": 1}
        ),
        "any_available": bool(buyable),
        "max_quantity": settings.MAX_LINE_QUANTITY,
    }


@require_GET
def product(request, slug: str):
    prod = catalog.product_by_slug(slug)
    if prod is None:
        raise Http404
    return render(request, "web/product.html", _product_context(prod))


# --- the cart --------------------------------------------------------------------------------


def _problem_rows(view) -> list[dict]:
    """The cart's problems with the line titles, so the template can say them in any language."""
    titles = {line["sku"]: line["title"] for line in view.lines}
    rows = []
    for p in view.problems:
        row = {**p, "title": titles.get(p.get("sku"), p.get("sku", ""))}
        if "voucher" in p:  # a voucher that no longer applies: the reason in the shopper's language
            extra = {k: v for k, v in p.items() if k not in {"code", "message"}}
            row["text"] = error_message(DomainError(p["message"], code=p["code"], **extra))
        rows.append(row)
    return rows


#: problems that only inform (the cart says them; the line is not marked, the checkout not held up)
INFO_PROBLEMS = {"hold_replaced_line"}


def _cart_context(request, cart, **extra):
    view = checkout.view_cart(cart) if cart is not None else None
    problem_skus = (
        {p.get("sku") for p in view.problems if p["code"] not in INFO_PROBLEMS} if view else set()
    )
    problems = _problem_rows(view) if view else []
    return {
        "cart": cart,
        "view": view,
        "problems": problems,
        "changes": [p for p in problems if p["code"] not in INFO_PROBLEMS],
        "problem_skus": problem_skus,
        "shipping_methods": list(METHODS.values()),
        "max_quantity": settings.MAX_LINE_QUANTITY,
        **extra,
    }


def _cart_error(request, err: DomainError, *, template="web/cart.html", cart=None):
    ctx = _cart_context(
        request, cart if cart is not None else current_cart(request), error=error_message(err)
    )
    return render(request, template, ctx, status=err.status)


@require_GET
def cart(request):
    return render(request, "web/cart.html", _cart_context(request, current_cart(request)))


@require_POST
def cart_add(request):
    form = forms.AddToCartForm(request.POST)
    if not form.is_valid():
        prod = catalog.product_by_slug(request.POST.get("product", ""))
        if prod is not None:
            ctx = _product_context(prod, form)
            ctx["error"] = _("Please choose an item and a quantity between 1 and %(max)s.") % {
                "max": settings.MAX_LINE_QUANTITY
            }
            return render(request, "web/product.html", ctx, status=422)
        return _cart_error(
            request,
            DomainError(
                _("Please choose an item and a quantity."), code="invalid_quantity", status=422
            ),
        )
    cart_obj = current_cart(request, create=True)
    try:
        checkout.add_line(
            cart_id=cart_obj.id,
            user=request.user,
            sku=form.cleaned_data["sku"],
            quantity=form.cleaned_data["quantity"],
        )
    except DomainError as err:
        prod = catalog.product_by_slug(request.POST.get("product", ""))
        if prod is not None:
            ctx = _product_context(prod, form)
            ctx["error"] = error_message(err)
            return render(request, "web/product.html", ctx, status=err.status)
        return _cart_error(request, err, cart=cart_obj)
    messages.success(request, _("The item is in your cart."))
    return redirect("web:cart")


def _cart_action(request, form_class, call):
    form = form_class(request.POST)
    cart_obj = current_cart(request)
    if cart_obj is None:
        return _cart_error(
            request, DomainError(_("Your cart is empty."), code="cart_empty", status=409)
        )
    if not form.is_valid():
        err = DomainError("invalid input", code="invalid_quantity", status=422)
        if form_class is forms.ShippingForm:
            err.code = "invalid_shipping_method"
        return _cart_error(request, err, cart=cart_obj)
    try:
        call(cart_obj, form.cleaned_data)
    except DomainError as err:
        return _cart_error(request, err, cart=cart_obj)
    return redirect("web:cart")


@require_POST
def cart_update(request):
    return _cart_action(
        request,
        forms.QuantityForm,
        lambda c, d: checkout.set_quantity(
            cart_id=c.id, user=request.user, sku=d["sku"], quantity=d["quantity"]
        ),
    )


@require_POST
def cart_remove(request):
    return _cart_action(
        request,
        forms.SkuForm,
        lambda c, d: checkout.remove_line(cart_id=c.id, user=request.user, sku=d["sku"]),
    )


@require_POST
def cart_shipping(request):
    return _cart_action(
        request,
        forms.ShippingForm,
        lambda c, d: checkout.set_shipping_method(
            cart_id=c.id, user=request.user, code=d["shipping_method"]
        ),
    )


@require_POST
def cart_voucher(request):
    """Apply a voucher code; when it does not apply, the reason in plain words."""
    from warenhaus.checkout import vouchers

    cart_obj = current_cart(request)
    if cart_obj is None:
        return _cart_error(
            request, DomainError(_("Your cart is empty."), code="cart_empty", status=409)
        )
    form = forms.VoucherForm(request.POST)
    if not form.is_valid():
        return _cart_error(
            request, DomainError("invalid input", code="voucher_unknown", status=422), cart=cart_obj
        )
    try:
        vouchers.apply_voucher(
            cart_id=cart_obj.id,
            user=request.user,
            code=form.cleaned_data["code"],
            channel=Channel.WEB,
            client_ip=_client_ip(request),
            session_key=request.session.session_key or "",
        )
    except DomainError as err:
        return _cart_error(request, err, cart=cart_obj)
    messages.success(request, _("The voucher has been applied."))
    return redirect("web:cart")


@require_POST
def cart_voucher_remove(request):
    from warenhaus.checkout import vouchers

    return _cart_action(
        request,
        forms.VoucherRemoveForm,
        lambda c, d: vouchers.remove_voucher(cart_id=c.id, user=request.user, code=d["voucher"]),
    )


# --- checkout --------------------------------------------------------------------------------


def _checkout_initial(request, cart_obj) -> dict:
    initial = {
        "country": "DE",
        "payment_method": "invoice",
        "test_outcome": "approve",
        "shipping_method": cart_obj.shipping_method if cart_obj else "standard",
    }
    if request.user.is_authenticated:
        initial["email"] = request.user.email
        initial["name"] = request.user.name
    return initial


@require_http_methods(["GET", "POST"])
def checkout_page(request):
    cart_obj = current_cart(request)
    if request.method == "GET":
        if cart_obj is None or not cart_obj.lines.exists():
            messages.info(request, _("Your cart is empty."))
            return redirect("web:cart")
        form = forms.CheckoutForm(initial=_checkout_initial(request, cart_obj))
        return render(request, "web/checkout.html", _cart_context(request, cart_obj, form=form))

    form = forms.CheckoutForm(request.POST)
    if cart_obj is None:
        # A second submit of the same form: the cart has become an order already.
        placed = lookups.order_from_cart(request.POST.get("cart_id", ""))
        if placed is not None and placed.number in request.session.get(SESSION_ORDERS, []):
            return redirect("web:order_confirmation", number=placed.number)
        return _cart_error(
            request, DomainError(_("Your cart is empty."), code="cart_empty", status=409)
        )
    if not form.is_valid():
        ctx = _cart_context(
            request, cart_obj, form=form, error=_("Please correct the marked fields.")
        )
        return render(request, "web/checkout.html", ctx, status=422)
    data = form.cleaned_data
    try:
        order = checkout.place_order(
            cart_id=cart_obj.id,
            user=request.user,
            email=data["email"],
            shipping_address=form.address(),
            payment_method=data["payment_method"],
            payment_token=form.payment_token(),
            shipping_method=data["shipping_method"],
            channel=Channel.WEB,
            language=translation.get_language() or settings.LANGUAGE_CODE,
            client_ip=_client_ip(request),
        )
    except DomainError as err:
        ctx = _cart_context(request, current_cart(request), form=form, error=error_message(err))
        return render(request, "web/checkout.html", ctx, status=err.status)
    remember_order(request, order.number)
    request.session.pop(SESSION_CART, None)
    return redirect("web:order_confirmation", number=order.number)


@require_GET
def order_confirmation(request, number: str):
    order = order_selectors.order_by_number(number)
    if not may_see_order(request, order):
        raise Http404
    return render(request, "web/order_confirmation.html", {"order": order})


# --- the shopper's account -------------------------------------------------------------------


def _login_required(view):
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("web:login"))
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@require_GET
@_login_required
def my_orders(request):
    page = _page(request, order_selectors.orders_of(request.user), size=20)
    return render(request, "web/my_orders.html", {"page": page, "orders": page.object_list})


@require_GET
@_login_required
def my_order(request, number: str):
    order = order_selectors.order_by_number(number)
    if order is None or order.user_id != request.user.pk:
        raise Http404
    return render(request, "web/my_order.html", {"order": order})


def _sign_in(request, user) -> None:
    """Log in and take the anonymous cart along."""
    anonymous_cart = request.session.get(SESSION_CART, "")
    auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    mine = checkout.merge_into_user_cart(cart_id=anonymous_cart or "", user=user)
    if mine is not None:
        request.session[SESSION_CART] = mine.id
    else:
        request.session.pop(SESSION_CART, None)


def _welcome(request, user, nxt: str, greeting: str):
    """After a login: signed in, the cart along, and this browser remembered for the account."""
    _sign_in(request, user)
    messages.success(request, greeting)
    response = redirect(nxt)
    devices.set_after_login(request, response, user.email)
    return response


def _client_ip(request) -> str:
    from warenhaus.core.apiutil import client_ip

    return client_ip(request)


def _refused(request, template: str, ctx: dict, err: DomainError, message: str = ""):
    """A page that says why a service refused, with the error's status (and Retry-After)."""
    response = render(
        request, template, {**ctx, "error": message or error_message(err)}, status=err.status
    )
    if getattr(err, "retry_after", None):
        response["Retry-After"] = str(err.retry_after)
    return response


@require_http_methods(["GET", "POST"])
def login_page(request):
    nxt = _safe_next(request, reverse("web:home"))
    if request.method == "GET":
        return render(request, "web/login.html", {"form": forms.LoginForm(), "next": nxt})
    form = forms.LoginForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "web/login.html",
            {
                "form": form,
                "next": nxt,
                "error": _("Please enter your e-mail address and password."),
            },
            status=422,
        )
    try:
        user = accounts.login(
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password"],
            client_ip=_client_ip(request),
            device=devices.from_request(request),
            request=request,
        )
    except DomainError as err:
        # refused for too many failures: the owner can still get in with a mailed link
        offer = err.code == "rate_limited"
        return _refused(
            request,
            "web/login.html",
            {"form": form, "next": nxt, "offer_link": offer, "email": form.cleaned_data["email"]},
            err,
        )
    return _welcome(request, user, nxt, _("Welcome back!"))


@require_http_methods(["GET", "POST"])
def login_link_page(request):
    """Ask for a login link by e-mail (when the password login is refused, or forgotten)."""
    nxt = _safe_next(request, reverse("web:home"))
    if request.method == "GET":
        return render(
            request,
            "web/login_link.html",
            {
                "form": forms.LoginLinkForm(initial={"email": request.GET.get("email", "")[:254]}),
                "next": nxt,
            },
        )
    form = forms.LoginLinkForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "web/login_link.html",
            {"form": form, "next": nxt, "error": _("Please enter a valid e-mail address.")},
            status=422,
        )
    try:
        login_links.request_link(email=form.cleaned_data["email"], client_ip=_client_ip(request))
    except DomainError as err:
        message = ""
        if err.code == "rate_limited":
            message = _(
                "Login links for this address were asked for several times just now. Please use the newest mail, or ask again in %(minutes)s minutes."
            ) % {"minutes": minutes_to_wait(err)}
        return _refused(request, "web/login_link.html", {"form": form, "next": nxt}, err, message)
    return render(
        request, "web/login_link.html", {"sent_to": form.cleaned_data["email"], "next": nxt}
    )


@require_http_methods(["GET", "POST"])
def login_link_confirm(request, key: str):
    """A mailed login link. Opening it only asks (mail scanners open links too); the button
    uses it up and logs in."""
    nxt = _safe_next(request, reverse("web:home"))
    if request.method == "GET":
        user = login_links.user_for_key(key)
        status = 200 if user is not None else 401
        return render(
            request,
            "web/login_link_confirm.html",
            {"key": key, "account": user, "next": nxt},
            status=status,
        )
    try:
        user = login_links.confirm(key=key, client_ip=_client_ip(request))
    except DomainError as err:
        return _refused(
            request, "web/login_link_confirm.html", {"key": key, "account": None, "next": nxt}, err
        )
    return _welcome(request, user, nxt, _("Welcome back!"))


@require_POST
def logout_page(request):
    auth_logout(request)
    messages.info(request, _("You are logged out."))
    return redirect("web:home")


@require_http_methods(["GET", "POST"])
def register_page(request):
    nxt = _safe_next(request, reverse("web:home"))
    if request.method == "GET":
        return render(request, "web/register.html", {"form": forms.RegisterForm(), "next": nxt})
    form = forms.RegisterForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "web/register.html",
            {"form": form, "next": nxt, "error": _("Please correct the marked fields.")},
            status=422,
        )
    d = form.cleaned_data
    try:
        user = accounts.register_customer(
            email=d["email"],
            password=d["password"],
            name=d["name"],
            language=translation.get_language() or "de",
            client_ip=_client_ip(request),
        )
    except DomainError as err:
        return _refused(request, "web/register.html", {"form": form, "next": nxt}, err)
    return _welcome(request, user, nxt, _("Your account has been created."))
