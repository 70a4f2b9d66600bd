"""Applying and removing a voucher code: a cart use-case that asks the discounts port
(:mod:`.discounts`) whether and how a code applies.

Every attempt to apply a code counts against the cart, the shopper, the session and the client
address before the code is looked at, so parallel guessing cannot pass the limit either.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from warenhaus.core import ratelimit
from warenhaus.core.errors import Conflict, DomainError, NotFound

from .discounts import discounts
from .services import CartView, _open, cart_view, get_cart, read_lines

#: refusals that say a guessed code hit nothing; only these count against the client address
GUESS_MISSES = {"voucher_unknown", "voucher_typo"}


def _rate_keys(
    *, cart_id: str, user, client_ip: str, session_key: str = ""
) -> list[tuple[str, str, int]]:
    keys = [("voucher-cart", cart_id, settings.VOUCHER_ATTEMPT_LIMIT)]
    if user is not None and getattr(user, "is_authenticated", False):
        keys.append(("voucher-shopper", str(user.pk), settings.VOUCHER_ATTEMPT_LIMIT))
    if session_key:
        keys.append(("voucher-session", session_key, settings.VOUCHER_ATTEMPT_LIMIT))
    if client_ip:
        keys.append(("voucher-addr", client_ip, settings.VOUCHER_ATTEMPT_LIMIT_ADDRESS))
    return keys


def apply_voucher(
    *,
    cart_id: str,
    user=None,
    code: str,
    channel: str = "web",
    client_ip: str = "",
    session_key: str = "",
) -> CartView:
    """Put a code on a cart, or say why it does not apply. The counts are taken atomically (a
    count's row stays locked until the attempt commits); after a burst the client must wait
    (429 with Retry-After). The address (a crowd behind one carrier NAT) gets its count back
    unless the code was unknown: it limits guesses, not shoppers.

    One transaction, one commit per attempt: a refusal commits the counts (every refusal comes
    before anything else is written) and is raised after the commit. Returns the cart's view as
    committed, so the caller need not read the cart again."""
    refusal = None
    with transaction.atomic():
        attempt = ratelimit.attempt(
            _rate_keys(cart_id=cart_id, user=user, client_ip=client_ip, session_key=session_key),
            window=settings.VOUCHER_ATTEMPT_WINDOW,
            message="Too many voucher codes tried; please wait before trying again.",
        )
        refusal = attempt.refusal
        if refusal is None:
            try:
                view = _put_on_cart(cart_id=cart_id, user=user, code=code, channel=channel)
            except DomainError as err:
                refusal = err
            if refusal is None or refusal.code not in GUESS_MISSES:
                attempt.give_back("voucher-addr")
    if refusal is not None:
        raise refusal
    return view


def _put_on_cart(*, cart_id: str, user, code: str, channel: str) -> CartView:
    """The checks and the write of :func:`apply_voucher`, inside its transaction."""
    cart = get_cart(cart_id=cart_id, user=user, for_update=True)
    _open(cart)
    port = discounts()
    base = read_lines(cart)
    found = port.find(cart=cart, code=code, channel=channel, has_codes=base.has_vouchers)
    if not found.on_cart and not base.lines:
        raise Conflict("The cart is empty; add items first.", code="cart_empty")
    evaluation = port.attach(
        cart=cart, candidate=found, lines=base.priced, subtotal=base.subtotal, channel=channel
    )
    if not found.on_cart:
        cart.save(update_fields=["updated_at"])
    return cart_view(cart, base, evaluation)


def remove_voucher(*, cart_id: str, user=None, code: str):
    """Take a code off a cart: by the code itself or by the voucher's ``id`` in the cart view."""
    with transaction.atomic():
        cart = get_cart(cart_id=cart_id, user=user, for_update=True)
        _open(cart)
        if not discounts().detach(cart=cart, code=code):
            raise NotFound("This voucher is not in the cart.", code="voucher_not_in_cart")
        cart.save(update_fields=["updated_at"])
    return cart
