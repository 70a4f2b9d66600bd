"""The shopper's flash-deal pages: the list of deals, a deal's page (prices, units left, the
countdown to the start, joining the queue or the wait list), the waiting room with its live
position, and the link of a wait-list offer mail.

Views are thin: they call :mod:`warenhaus.deals.services` and render. A visitor is told who
they are by the session (its key identifies an anonymous visitor to the waiting room, and its
cart is where held units land); the session also remembers the visitor's tickets and wait-list
places, so the deal page shows "your place" when visited again. Every page works without
JavaScript: the waiting room refreshes itself with a meta refresh and a link, and htmx polls a
small fragment of it when JavaScript runs.
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods

from warenhaus.checkout import services as checkout
from warenhaus.checkout.models import CartStatus
from warenhaus.core.errors import DomainError
from warenhaus.deals import limiter, selectors, services
from warenhaus.deals.models import Deal, Hold, WaitlistEntry, WaitlistStatus

from .messages_map import error_message
from .views import SESSION_CART, current_cart

SESSION_TICKETS = "deal_tickets"
SESSION_WAITLIST = "deal_waitlist"
#: seconds between two polls of the waiting room (htmx) and two reloads without JavaScript: the
#: server's ``poll_after_seconds`` (longer far back in a long line), within these bounds (a page
#: left open before the start notices the start within seconds)
POLL_SECONDS = (2, 5)
REFRESH_SECONDS = (5, 10)


# --- helpers -----------------------------------------------------------------------------------


def deal_row(deal: Deal) -> dict:
    """A deal as the pages show it: the services' JSON with the product's title and slug."""
    variant = deal.variant
    title = variant.product.title + (f" – {variant.title}" if variant.title else "")
    row = services.deal_json(deal)
    # every unit sold or held in someone's cart: newcomers are told so and offered the wait list
    all_taken = row["state"] == "sold_out" or (row["state"] == "live" and row["units_left"] == 0)
    return {
        **row,
        "title": title,
        "product_slug": variant.product.slug,
        "deal": deal,
        "all_taken": all_taken,
    }


def deal_or_404(pk) -> Deal:
    try:
        return services.get_deal(pk)
    except DomainError:
        raise Http404 from None


def _remembered(request, key: str, deal_id: int) -> str:
    return (request.session.get(key) or {}).get(str(deal_id), "")


def _remember(request, key: str, deal_id: int, value: str) -> None:
    places = dict(request.session.get(key) or {})
    places[str(deal_id)] = value
    request.session[key] = places


def _session_key(request) -> str:
    if not request.session.session_key:
        request.session.save()
    return request.session.session_key


def _adopt_cart(request, cart_id: str) -> bool:
    """Make the cart holding a visitor's deal units their current cart (if it is open and
    theirs: anonymous, or the logged-in shopper's)."""
    user = request.user if request.user.is_authenticated else None
    try:
        cart = checkout.get_cart(cart_id=cart_id, user=user)
    except DomainError:
        return False
    if cart.status != CartStatus.OPEN:
        return False
    request.session[SESSION_CART] = cart.id
    return True


def _ticket_status(deal: Deal, ticket: str) -> dict | None:
    try:
        return services.ticket_status(deal_id=deal.pk, ticket_id=ticket, deal=deal)
    except DomainError:
        return None


def _waitlist_status(deal: Deal, token: str) -> dict | None:
    try:
        return services.waitlist_status(deal_id=deal.pk, token=token)
    except DomainError:
        return None


def _deal_context(request, deal: Deal, **extra) -> dict:
    row = deal_row(deal)
    ticket = _remembered(request, SESSION_TICKETS, deal.pk)
    token = _remembered(request, SESSION_WAITLIST, deal.pk)
    return {
        "d": row,
        "ticket": _ticket_status(deal, ticket) if ticket else None,
        "waitlist": _waitlist_status(deal, token) if token else None,
        "quantities": range(1, deal.limit_per_customer + 1),
        "needs_email": not request.user.is_authenticated,
        # a join the server turned away for overload comes back here with its arrival: the join
        # button sends it, so the place in line counts from the first try
        "arrival": (request.GET.get("arrival") or request.POST.get("arrival") or "")[:400],
        **extra,
    }


def _deal_page(request, deal: Deal, *, status: int = 200, **extra):
    return render(
        request, "web/deals/deal.html", _deal_context(request, deal, **extra), status=status
    )


def _quantity(request) -> int:
    try:
        return int(request.POST.get("quantity") or 1)
    except ValueError:
        return 0  # the service refuses it with a readable reason


def _email(request) -> str:
    if request.user.is_authenticated:
        return request.user.email
    return (request.POST.get("email") or "").strip()[:254]


# --- pages ---------------------------------------------------------------------------------------


@require_GET
def deals_list(request):
    deals = [
        deal_row(d) for d in selectors.current(Deal.objects.select_related("variant__product"))[:50]
    ]
    return render(request, "web/deals/list.html", {"deals": deals})


@require_GET
def deal_page(request, pk: int):
    return _deal_page(request, deal_or_404(pk))


@require_http_methods(["GET", "POST"])
def deal_join(request, pk: int):
    """Join the queue. Held units land in the visitor's cart; when everything is sold or held
    the answer is the wait list (joined at once if an e-mail address came along). A GET (the
    admission limiter's page reloading itself after a refused join) goes back to the deal, with
    the refused join's arrival for the button to send."""
    deal = deal_or_404(pk)
    if request.method == "GET":
        arrival = (request.GET.get("arrival") or "")[:400]
        return redirect(
            reverse("web:deal", args=[deal.pk])
            + (f"?{urlencode({'arrival': arrival})}" if arrival else "")
        )
    email = "" if request.user.is_authenticated else _email(request)
    # the place in line counts from a refused earlier try (its signed arrival), else from when
    # this request reached the server
    arrived = limiter.arrival_from(
        request, deal.pk, (request.POST.get("arrival") or "")[:400]
    ) or limiter.arrived_at(request)
    cart = current_cart(request, create=True)
    try:
        result = services.join_queue(
            deal_id=deal.pk,
            user=request.user,
            guest=f"session:{_session_key(request)}",
            email=email,
            quantity=_quantity(request),
            cart_id=cart.id,
            language=translation.get_language() or "de",
            arrived=arrived,
        )
    except DomainError as err:
        return _deal_page(request, deal, status=err.status, error=error_message(err), email=email)
    if result.get("ticket"):
        _remember(request, SESSION_TICKETS, deal.pk, result["ticket"])
        return redirect("web:deal_queue", pk=deal.pk, ticket=result["ticket"])
    if result.get("waitlist"):
        _remember(request, SESSION_WAITLIST, deal.pk, result["waitlist"]["entry"])
    return redirect("web:deal", pk=deal.pk)


@require_http_methods(["GET", "POST"])
def deal_waitlist(request, pk: int):
    deal = deal_or_404(pk)
    if request.method == "GET":  # see deal_join
        return redirect(reverse("web:deal", args=[deal.pk]) + "#waitlist")
    email = _email(request)
    try:
        who = services.customer_key(user=request.user, guest=f"session:{_session_key(request)}")
        entry = services.join_waitlist(
            deal_id=deal.pk,
            who=who,
            email=email,
            quantity=_quantity(request),
            language=translation.get_language() or "de",
        )
    except DomainError as err:
        return _deal_page(request, deal, status=err.status, error=error_message(err), email=email)
    _remember(request, SESSION_WAITLIST, deal.pk, entry["entry"])
    return redirect(reverse("web:deal", args=[deal.pk]) + "#waitlist")


def _queue_context(request, deal: Deal, ticket: str) -> dict:
    status = _ticket_status(deal, ticket)
    if status is None:
        raise Http404
    if status["state"] == "admitted" and status.get("cart_id"):
        _adopt_cart(request, status["cart_id"])
    if status.get("waitlist"):  # the line ran out of units: the ticket's wait-list place
        _remember(request, SESSION_WAITLIST, deal.pk, status["waitlist"]["entry"])
    _remember(request, SESSION_TICKETS, deal.pk, ticket)
    asked = status.get("poll_after_seconds") or 0
    return {
        **_deal_context(request, deal),
        "status": status,
        "ticket_id": ticket,
        "poll_seconds": min(max(POLL_SECONDS[0], asked), POLL_SECONDS[1]),
        "refresh_seconds": min(max(REFRESH_SECONDS[0], asked), REFRESH_SECONDS[1]),
    }


@require_GET
def deal_queue(request, pk: int, ticket: str):
    """The waiting room: position and estimated wait, refreshed until the shopper is let in."""
    ctx = _queue_context(request, deal_or_404(pk), ticket)
    return render(request, "web/deals/queue.html", ctx)


@require_GET
def deal_queue_status(request, pk: int, ticket: str):
    """The waiting room's live part (what htmx polls); once admitted, htmx goes to the cart."""
    ctx = _queue_context(request, deal_or_404(pk), ticket)
    response = render(request, "web/deals/_queue_status.html", ctx)
    if ctx["status"]["state"] == "admitted" and request.headers.get("HX-Request"):
        response["HX-Redirect"] = reverse("web:cart")
    return response


def _offered_hold(token: str):
    """The wait-list entry of an offer link and its hold, if the offer still stands."""
    entry = WaitlistEntry.objects.filter(token=str(token or "")[:64]).first()
    if entry is None:
        return None, None
    hold = None
    if entry.status == WaitlistStatus.OFFERED:
        hold = Hold.objects.filter(
            deal_id=entry.deal_id, ticket=entry.token, source="waitlist"
        ).first()
        if hold is not None and not services.hold_is_live(
            {"status": hold.status, "expires_at": hold.expires_at}
        ):
            hold = None
    return entry, hold


@require_GET
def deal_offer(request, token: str):
    """The link of the wait-list offer mail: the cart that holds the offered units."""
    entry, hold = _offered_hold(token)
    if entry is None:
        raise Http404
    if hold is None:
        bought = entry.status == WaitlistStatus.BOUGHT
        return render(
            request,
            "web/deals/offer_lapsed.html",
            {"entry": entry, "bought": bought, "d": deal_row(deal_or_404(entry.deal_id))},
        )
    owner = hold.cart.user_id
    if owner is not None and (not request.user.is_authenticated or request.user.pk != owner):
        return redirect_to_login(request.get_full_path(), reverse("web:login"))
    _adopt_cart(request, hold.cart_id)
    return redirect("web:cart")
