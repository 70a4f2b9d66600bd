"""Carts and placing an order.

``place_order`` is the one unit of work of a checkout: stock allocated (a conditional UPDATE per
variant in a fixed order), payment authorised, order written, confirmation put in the outbox,
cart closed, all in one transaction. If any part fails, nothing of it remains and the error says
why; an authorisation already given is voided.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from warenhaus.catalog.models import Variant
from warenhaus.core.channels import Channel
from warenhaus.core.clock import now
from warenhaus.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from warenhaus.inventory import services as inventory
from warenhaus.orders import events as order_events
from warenhaus.orders import services as orders
from warenhaus.orders.models import Order

from . import holds as deal_holds
from . import shipping
from .discounts import Evaluation, discounts
from .models import Cart, CartLine, CartStatus
from .payments import gateway
from .pricing import PricedLine, Totals, compute

ADDRESS_FIELDS = ("name", "street", "postal_code", "city", "country")
COUNTRIES = {"DE", "AT"}


class CartNotFound(NotFound):
    code = "cart_not_found"
    title = "Cart not found"


# --- access ----------------------------------------------------------------------------------


def get_cart(*, cart_id: str, user=None, for_update: bool = False) -> Cart:
    """A cart the caller may use: an anonymous one by its id, a shopper's only by that shopper.
    Someone else's cart is reported as not found, so ids cannot be probed."""
    if not cart_id or len(cart_id) > 64:
        raise CartNotFound("No such cart.")
    qs = Cart.objects.select_for_update() if for_update else Cart.objects
    cart = next(iter(qs.filter(pk=cart_id)), None)  # the primary key: no ORDER BY ... LIMIT needed
    if cart is None:
        raise CartNotFound("No such cart.")
    if cart.user_id is not None and (
        user is None or not user.is_authenticated or user.pk != cart.user_id
    ):
        raise CartNotFound("No such cart.")
    return cart


def _open(cart: Cart) -> None:
    if cart.status != CartStatus.OPEN:
        raise Conflict(
            "This cart has been checked out or merged; start a new one.", code="cart_closed"
        )


def create_cart(*, user=None) -> tuple[Cart, bool]:
    """A new anonymous cart, or the shopper's open cart (created if there is none)."""
    if user is not None and user.is_authenticated:
        existing = (
            Cart.objects.filter(user=user, status=CartStatus.OPEN).order_by("-updated_at").first()
        )
        if existing:
            return existing, False
        return Cart.objects.create(user=user), True
    return Cart.objects.create(), True


def _quantity(quantity) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise ValidationFailed("quantity must be a whole number.", code="invalid_quantity")
    if quantity < 1 or quantity > settings.MAX_LINE_QUANTITY:
        raise ValidationFailed(
            f"quantity must be between 1 and {settings.MAX_LINE_QUANTITY}.", code="invalid_quantity"
        )
    return quantity


def _variant(sku: str) -> Variant:
    variant = (
        Variant.objects.select_related("product", "stock").filter(sku=sku).first()
        if sku and len(sku) <= 64
        else None
    )
    if variant is None:
        raise NotFound(f"No product with SKU '{sku}'.", code="sku_not_found")
    if not variant.is_active or not variant.product.is_active:
        raise Conflict(
            f"{variant.display_title} is no longer available.", code="not_available", sku=sku
        )
    return variant


def _check_stock(variant: Variant, quantity: int) -> None:
    stock = getattr(variant, "stock", None)
    available = stock.available if stock is not None else 0
    if quantity > available:
        raise inventory.OutOfStock(
            f"Only {available} of {variant.display_title} available; you asked for {quantity}.",
            sku=variant.sku,
            available=available,
        )


def add_line(*, cart_id: str, user=None, sku: str, quantity) -> Cart:
    quantity = _quantity(quantity)
    with transaction.atomic():
        cart = get_cart(cart_id=cart_id, user=user, for_update=True)
        _open(cart)
        variant = _variant(sku)
        line = CartLine.objects.filter(cart=cart, variant=variant).first()
        _unless_held(line)
        new_qty = quantity + (line.quantity if line else 0)
        if new_qty > settings.MAX_LINE_QUANTITY:
            raise ValidationFailed(
                f"At most {settings.MAX_LINE_QUANTITY} of one item per order.",
                code="invalid_quantity",
            )
        _check_stock(variant, new_qty)
        if line:
            line.quantity = new_qty
            line.price_when_added = variant.price
            line.save(update_fields=["quantity", "price_when_added"])
        else:
            if cart.lines.count() >= settings.MAX_CART_LINES:
                raise Conflict(
                    f"A cart holds at most {settings.MAX_CART_LINES} different items.",
                    code="cart_full",
                )
            CartLine.objects.create(
                cart=cart, variant=variant, quantity=quantity, price_when_added=variant.price
            )
        cart.save(update_fields=["updated_at"])
    return cart


def set_quantity(*, cart_id: str, user=None, sku: str, quantity) -> Cart:
    quantity = _quantity(quantity)
    with transaction.atomic():
        cart = get_cart(cart_id=cart_id, user=user, for_update=True)
        _open(cart)
        line = (
            CartLine.objects.select_related("variant__product")
            .filter(cart=cart, variant__sku=sku)
            .first()
        )
        if line is None:
            raise NotFound(f"'{sku}' is not in this cart.", code="line_not_found")
        _unless_held(line)
        if quantity > line.quantity:
            _check_stock(line.variant, quantity)
        line.quantity = quantity
        line.price_when_added = line.variant.price  # the shopper has looked at the line again
        line.save(update_fields=["quantity", "price_when_added"])
        cart.save(update_fields=["updated_at"])
    return cart


def remove_line(*, cart_id: str, user=None, sku: str) -> Cart:
    with transaction.atomic():
        cart = get_cart(cart_id=cart_id, user=user, for_update=True)
        _open(cart)
        line = CartLine.objects.filter(cart=cart, variant__sku=sku).first()
        if line is None:
            raise NotFound(f"'{sku}' is not in this cart.", code="line_not_found")
        line.delete()
        if line.deal_hold_id:  # the shopper lets the deal go: the next in line gets the units
            deal_holds.release(line.deal_hold_id)
        cart.save(update_fields=["updated_at"])
    return cart


def _unless_held(line) -> None:
    """A line of held deal units keeps its quantity while the hold lasts; after it, the line is
    a regular one (at today's price, with the stock there is)."""
    if line is None or not line.deal_hold_id:
        return
    hold = deal_holds.read([line.deal_hold_id]).get(line.deal_hold_id)
    if hold is not None and hold["live"]:
        raise Conflict(
            "These units are held for you at the deal price until the deadline; their quantity cannot change. Remove the line to let them go.",
            code="line_held",
        )
    line.deal_hold_id = None
    line.price_when_added = line.variant.price
    line.save(update_fields=["deal_hold_id", "price_when_added"])


def set_shipping_method(*, cart_id: str, user=None, code: str) -> Cart:
    m = shipping.method(code)
    with transaction.atomic():
        cart = get_cart(cart_id=cart_id, user=user, for_update=True)
        _open(cart)
        cart.shipping_method = m.code
        cart.save(update_fields=["shipping_method", "updated_at"])
    return cart


def merge_into_user_cart(*, cart_id: str, user) -> Cart | None:
    """At login: the anonymous cart's lines join the shopper's open cart (quantities add up,
    capped at the per-line maximum). Returns the shopper's cart."""
    with transaction.atomic():
        anon = (
            Cart.objects.select_for_update()
            .filter(pk=cart_id, user__isnull=True, status=CartStatus.OPEN)
            .first()
        )
        mine = (
            Cart.objects.select_for_update()
            .filter(user=user, status=CartStatus.OPEN)
            .order_by("-updated_at")
            .first()
        )
        if anon is None:
            return mine
        if mine is None:
            anon.user = user
            anon.save(update_fields=["user", "updated_at"])
            return anon
        anon_lines = list(anon.lines.all())
        mine_lines = {
            ln.variant_id: ln
            for ln in CartLine.objects.filter(
                cart=mine, variant_id__in=[ln.variant_id for ln in anon_lines]
            )
        }
        holds = _holds(
            [ln.deal_hold_id for ln in [*anon_lines, *mine_lines.values()] if ln.deal_hold_id]
        )
        live = {pk for pk, h in holds.items() if h["live"]}
        for line in anon_lines:
            existing = mine_lines.get(line.variant_id)
            if (
                line.deal_hold_id in live
            ):  # held deal units move as they are, replacing a regular line (the cart says so)
                replaced = (
                    existing.quantity
                    if existing is not None and existing.deal_hold_id not in live
                    else 0
                )
                CartLine.objects.filter(cart=mine, variant_id=line.variant_id).delete()
                CartLine.objects.create(
                    cart=mine,
                    variant_id=line.variant_id,
                    quantity=line.quantity,
                    price_when_added=line.price_when_added,
                    deal_hold_id=line.deal_hold_id,
                )
                deal_holds.move(line.deal_hold_id, cart_id=mine.pk, replaced=replaced)
            elif existing is not None and existing.deal_hold_id in live:
                # the shopper's held units stay as they are; the cart says the regular ones gave way
                deal_holds.add_replaced(existing.deal_hold_id, line.quantity)
            elif (
                existing is not None
            ):  # regular units (a hold that ended is a regular line now) add up
                existing.quantity = min(
                    settings.MAX_LINE_QUANTITY, existing.quantity + line.quantity
                )
                existing.save(update_fields=["quantity"])
            else:  # a line whose hold ended keeps naming it, so the cart still says it ended
                CartLine.objects.create(
                    cart=mine,
                    variant_id=line.variant_id,
                    quantity=line.quantity,
                    price_when_added=line.price_when_added,
                    deal_hold_id=line.deal_hold_id,
                )
        discounts().move(from_cart_id=anon.pk, to_cart_id=mine.pk)
        anon.status = CartStatus.MERGED
        anon.save(update_fields=["status", "updated_at"])
        mine.save(update_fields=["updated_at"])
        return mine


# --- reading a cart --------------------------------------------------------------------------


@dataclass
class CartView:
    cart: Cart
    lines: list[dict]
    priced: list[PricedLine]
    totals: Totals
    problems: list[dict]
    vouchers: Evaluation = field(default_factory=Evaluation)
    held: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "id": self.cart.id,
            "status": self.cart.status,
            "lines": self.lines,
            "vouchers": self.vouchers.rows(),
            "shipping_method": self.cart.shipping_method,
            "totals": self.totals.as_json(),
            "problems": self.problems,
        }


def empty_view(cart: Cart) -> CartView:
    """The view of a cart just created: nothing to read."""
    return CartView(
        cart=cart,
        lines=[],
        priced=[],
        totals=compute([], shipping_cost=Decimal("0.00")),
        problems=[],
    )


_LINE_FIELDS = (
    "variant_id",
    "quantity",
    "price_when_added",
    "variant__sku",
    "variant__title",
    "variant__price",
    "variant__is_active",
    "variant__product__title",
    "variant__product__slug",
    "variant__product__is_active",
    "variant__product__vat_rate",
    "variant__stock__on_hand",
    "variant__stock__allocated",
    "variant__product_id",
    "variant__product__category_id",
    "deal_hold_id",
)


@dataclass
class CartLines:
    """A cart's lines at current prices and stock, before vouchers. ``has_vouchers`` says
    whether the cart holds any voucher (None: not known, the cart has no lines)."""

    lines: list[dict]
    priced: list[PricedLine]
    problems: list[dict]
    subtotal: Decimal
    has_vouchers: bool | None
    #: variant id -> hold id of the lines whose flash-deal hold is live (deal price, stock kept)
    held: dict = field(default_factory=dict)


def read_lines(cart: Cart) -> CartLines:
    """One query, plain rows (no model instances): this runs on every cart change and every
    checkout. Whether the cart holds vouchers comes with it, so that a cart without any (most
    of them) costs no voucher query; read in a statement of its own after the cart's row lock,
    it sees every voucher committed before."""
    from warenhaus.core.money import money_json

    rows = (
        CartLine.objects.filter(cart=cart)
        .order_by("added_at", "id")
        .annotate(has_vouchers=discounts().has_codes(cart.pk))
        .values_list(*_LINE_FIELDS, "has_vouchers")
    )
    priced, lines, problems = [], [], []
    rows = list(rows)
    has_vouchers = rows[0][16] if rows else None
    holds = _holds([r[15] for r in rows if r[15]])
    held = {}
    for (
        variant_id,
        quantity,
        price_when_added,
        sku,
        variant_title,
        price,
        variant_active,
        product_title,
        product_slug,
        product_active,
        vat_rate,
        on_hand,
        allocated,
        product_id,
        category_id,
        hold_id,
        _has_vouchers,
    ) in rows:
        title = f"{product_title} – {variant_title}" if variant_title else product_title
        available = max(0, (on_hand or 0) - (allocated or 0))
        active = variant_active and product_active
        hold = holds.get(hold_id) if hold_id else None
        hold_json = None
        if hold is not None and hold["live"]:
            # held for the shopper: the deal's units at the deal price until the deadline
            price, available = hold["price"], quantity
            held[variant_id] = hold_id
            hold_json = {"quantity": hold["quantity"], "expires_at": hold["expires_at"].isoformat()}
            if hold[
                "replaced_quantity"
            ]:  # told, not blocking: the regular units the held line took the place of
                problems.append(
                    {
                        "code": "hold_replaced_line",
                        "sku": sku,
                        "replaced_quantity": hold["replaced_quantity"],
                        "quantity": hold["quantity"],
                        "message": f"The {hold['replaced_quantity']} x {title} at the regular price in your cart were replaced by the "
                        f"{hold['quantity']} held for you at the deal price; you can add more at the regular price after this order.",
                    }
                )
        elif hold_id:
            when = hold["expires_at"] if hold else None
            problems.append(
                {
                    "code": "hold_expired",
                    "sku": sku,
                    "expired_at": when.isoformat() if when else None,
                    "regular_price": money_json(price),
                    "message": f"The deal price of {title} was held for you until {timezone.localtime(when):%H:%M %Z}; it is now at the regular price."
                    if when
                    else f"The deal price of {title} is no longer held for you.",
                }
            )
        if not active:
            problems.append(
                {"code": "not_available", "sku": sku, "message": f"{title} is no longer available."}
            )
        elif available < quantity:
            problems.append(
                {
                    "code": "insufficient_stock",
                    "sku": sku,
                    "available": available,
                    "message": f"Only {available} of {title} available."
                    if available
                    else f"{title} is sold out.",
                }
            )
        if price_when_added != price and not hold_id:
            problems.append(
                {
                    "code": "price_changed",
                    "sku": sku,
                    "old_price": money_json(price_when_added),
                    "new_price": money_json(price),
                    "message": f"The price of {title} changed from {price_when_added} to {price} EUR.",
                }
            )
        p = PricedLine(
            variant_id=variant_id,
            sku=sku,
            title=title,
            unit_price=price,
            quantity=quantity,
            vat_rate=vat_rate,
            product_id=product_id,
            category_id=category_id,
        )
        if active:
            priced.append(p)
        lines.append(
            {
                "sku": sku,
                "title": title,
                "product_slug": product_slug,
                "quantity": quantity,
                "unit_price": money_json(price),
                "line_total": money_json(p.line_total),
                "vat_rate": f"{vat_rate:.0f}",
                "available": available if active else 0,
                "hold": hold_json,
            }
        )
    subtotal = sum((p.line_total for p in priced), Decimal("0.00"))
    return CartLines(
        lines=lines,
        priced=priced,
        problems=problems,
        subtotal=subtotal,
        has_vouchers=None if has_vouchers is None else bool(has_vouchers),
        held=held,
    )


def _holds(hold_ids: list[int]) -> dict[int, dict]:
    """The flash-deal holds the cart's lines name (no query when there are none)."""
    return deal_holds.read(hold_ids)


def cart_view(cart: Cart, base: CartLines, vouchers: Evaluation) -> CartView:
    """The view of ``base`` with the vouchers' evaluation: what they take off, and a problem for
    each that no longer applies (paused, used up, basket too small...). Shipping stays what the
    goods' value makes it."""
    method = shipping.method(cart.shipping_method)
    priced = base.priced
    totals = compute(
        priced,
        shipping_cost=method.cost(base.subtotal) if priced else Decimal("0.00"),
        discount=vouchers.discount,
    )
    return CartView(
        cart=cart,
        lines=base.lines,
        priced=priced,
        totals=totals,
        problems=base.problems + vouchers.problems(),
        vouchers=vouchers,
        held=base.held,
    )


def view_cart(cart: Cart) -> CartView:
    """Lines, totals and problems of a cart at current prices and stock, vouchers included."""
    base = read_lines(cart)
    vouchers = (
        discounts().evaluate(cart=cart, lines=base.priced, subtotal=base.subtotal)
        if base.priced and base.has_vouchers
        else Evaluation()
    )
    return cart_view(cart, base, vouchers)


# --- checkout --------------------------------------------------------------------------------


def _address(raw) -> dict:
    if not isinstance(raw, dict):
        raise ValidationFailed(
            "shipping_address must be an object with name, street, postal_code, city and country.",
            code="invalid_address",
        )
    addr = {k: str(raw.get(k) or "").strip()[:200] for k in ADDRESS_FIELDS}
    addr["country"] = (addr["country"] or "DE").upper()
    missing = [k for k in ADDRESS_FIELDS if not addr[k]]
    if missing:
        raise ValidationFailed(
            f"The shipping address is missing: {', '.join(missing)}.",
            code="invalid_address",
            missing=missing,
        )
    if addr["country"] not in COUNTRIES:
        raise ValidationFailed(
            f"We ship to {', '.join(sorted(COUNTRIES))} only.", code="country_not_served"
        )
    if addr["country"] == "DE" and not (
        addr["postal_code"].isdigit() and len(addr["postal_code"]) == 5
    ):
        raise ValidationFailed(
            "A German postal code has five digits.", code="invalid_address", missing=["postal_code"]
        )
    return addr


def _order_user(*, user, email: str, channel: str):
    """Whose order it is: the shopper's; for a phone order placed by staff, the account with the
    customer's e-mail address if there is one (never the staff member's)."""
    if channel == "phone":
        from django.contrib.auth import get_user_model

        return get_user_model().objects.filter(email=email).first()
    return user if user is not None and user.is_authenticated else None


def place_order(
    *,
    cart_id: str,
    user=None,
    email: str,
    shipping_address,
    payment_method: str,
    payment_token: str = "",
    shipping_method: str | None = None,
    channel: str = "web",
    language: str = "de",
    client_ip: str = "",
) -> Order:
    """``channel`` is ``web`` (pages), ``api`` or ``phone``; a phone order is placed by a staff
    member (``user``, who needs ``orders.place_phone``) for the customer named by ``email``."""
    from warenhaus.accounts.roles import can
    from warenhaus.accounts.services import normalise_email
    from warenhaus.core.errors import Forbidden

    email = normalise_email(email)
    if channel not in Channel.values:
        raise ValidationFailed("channel is web, api or phone.", code="invalid_channel")
    if channel == "phone" and not can(user, "orders.place_phone"):
        raise Forbidden("Only staff may place phone orders (orders.place_phone).", code="forbidden")
    addr = _address(shipping_address)
    gw = gateway(payment_method)
    auth = None
    try:
        with transaction.atomic():
            cart = get_cart(cart_id=cart_id, user=user, for_update=True)
            _open(cart)
            if shipping_method:
                cart.shipping_method = shipping.method(shipping_method).code
            view = view_cart(cart)
            if not view.lines:
                raise Conflict("The cart is empty.", code="cart_empty")
            blocking = [p for p in view.problems if p["code"] == "not_available"]
            if blocking:
                raise Conflict(blocking[0]["message"], code="not_available", problems=blocking)
            expired = [p for p in view.problems if p["code"] == "hold_expired"]
            if expired:
                raise HoldExpired(expired)
            changed = [p for p in view.problems if p["code"] == "price_changed"]
            if changed:
                raise PriceChanged(cart, changed)
            order_user = _order_user(user=user, email=email, channel=channel)
            vouchers = discounts().check_for_checkout(
                evaluation=view.vouchers,
                lines=view.priced,
                subtotal=view.totals.subtotal,
                user_id=getattr(order_user, "pk", None),
                email=email,
                channel=channel,
            )
            for line in sorted(view.priced, key=lambda l: l.variant_id):
                if line.variant_id not in view.held:  # held deal units are the deal's already
                    inventory.allocate(
                        variant_id=line.variant_id, quantity=line.quantity, sku=line.sku
                    )
            t = view.totals
            # Authorise first, under the number the order will have, so the order is written
            # once, in its final state, with its payment (fewer statements under load).
            number = orders.new_order_number()
            auth = gw.authorize(amount=t.total, order_number=number, token=payment_token)
            order = orders.record_placed_order(
                number=number,
                status="paid" if auth.status == "authorized" else "awaiting_payment",
                status_reason=f"payment {auth.status} ({gw.name})",
                lines=[
                    {
                        "variant_id": l.variant_id,
                        "sku": l.sku,
                        "title": l.title,
                        "unit_price": l.unit_price,
                        "quantity": l.quantity,
                        "vat_rate": l.vat_rate,
                        "line_total": l.line_total,
                    }
                    for l in view.priced
                ],
                payment={
                    "gateway": gw.name,
                    "reference": auth.reference,
                    "amount": t.total,
                    "status": auth.status,
                },
                user=order_user,
                email=email,
                shipping_address=addr,
                shipping_method=cart.shipping_method,
                payment_method=gw.name,
                subtotal=t.subtotal,
                discount=t.discount,
                shipping=t.shipping,
                vat=t.vat,
                vat_breakdown=t.vat_breakdown,
                total=t.total,
                cart_id=cart.id,
                placed_at=now(),
                channel=channel,
                language=language,
            )
            # Promotions count the vouchers, deals convert the holds (locking the deal's row
            # last), notifications write the confirmation: see their receivers.
            order_events.order_placed.send(
                orders=[order],
                cart_id=cart.id,
                held=dict(view.held),
                evaluation=vouchers,
                user=order_user,
                email=email,
                channel=channel,
                client_ip=client_ip,
                shipping_address=addr,
                payment_fingerprint=gw.fingerprint(payment_token),
                language=language,
            )
            if order.status == "paid":
                order_events.order_paid.send(orders=[order], actor=None, source=channel)
            if channel == "phone":
                from warenhaus.core import audit

                audit.record(
                    actor=user,
                    action="order.place_phone",
                    obj=order,
                    after={"email": email, "total": t.total, "discount": t.discount},
                )
            cart.status = CartStatus.ORDERED
            cart.save(update_fields=["status", "shipping_method", "updated_at"])
            return order
    except HoldExpired as err:
        # Told once: afterwards the lines are regular lines at today's price.
        def unhold(expired=err.expired):
            for p in expired:
                price = Decimal(p["regular_price"]["amount"])
                CartLine.objects.filter(cart_id=cart_id, variant__sku=p["sku"]).update(
                    deal_hold_id=None, price_when_added=price
                )

        err.after_rollback.append(unhold)
        err.run_after_rollback()
        raise
    except PriceChanged as err:
        # The shopper is being told now; afterwards the lines take the current price so that a
        # resubmit goes through. That write must survive the rollback of the refused checkout.
        def rebase(changed=err.changed):
            for p in changed:
                CartLine.objects.filter(cart_id=cart_id, variant__sku=p["sku"]).update(
                    price_when_added=Decimal(p["new_price"]["amount"])
                )

        err.after_rollback.append(rebase)
        err.run_after_rollback()
        raise
    except IntegrityError as err:
        if auth is not None and auth.status == "authorized":
            gw.void(reference=auth.reference)
        if "number" in str(err).lower():  # two orders drew the same random number: try again
            raise Conflict(
                "Please submit the order again.", code="order_number_collision", retryable=True
            ) from None
        raise
    except BaseException:
        if auth is not None and auth.status == "authorized":
            gw.void(reference=auth.reference)
        raise


def void_authorisations(order: Order) -> None:
    """Release the card authorisations of an order whose transaction rolled back. Reads the
    payments from what place_order attached (the rows themselves are gone)."""
    for payment in order.payments.all():
        if payment.status == "authorized":
            gateway(payment.gateway, for_new_payment=False).void(reference=payment.reference)


class HoldExpired(Conflict):
    code = "hold_expired"
    title = "Hold expired"
    retryable = True

    def __init__(self, expired):
        super().__init__(
            "The deal price was held for you until a deadline that has passed; the item is now at its regular price. Please review the cart and submit again.",
            problems=expired,
        )
        self.expired = expired


class PriceChanged(Conflict):
    code = "price_changed"
    title = "Prices changed"
    retryable = True

    def __init__(self, cart, changed):
        super().__init__(
            "Some prices in your cart have changed since you added the items. Please review the cart and submit again.",
            problems=changed,
        )
        self.changed = changed


__all__ = ["DomainError"]
