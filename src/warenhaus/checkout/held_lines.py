"""Held units into carts: the cart each admitted shopper's units go into, and the lines that
carry them at the held price. Called by the app that holds units (flash deals), inside its
transaction; the cart's tables are written only here and in :mod:`.services`.
"""

from __future__ import annotations

from decimal import Decimal

from .models import Cart, CartLine, CartStatus


def carts_for(turns: list[tuple[str, str, int | None]]) -> dict[str, str]:
    """The cart for each turn ``(key, cart id the shopper named or "", account id or None)``,
    as key -> cart id: the named cart if it is still open and theirs (or anonymous), else the
    account's latest open cart, else a new one; never one cart for two turns."""
    open_carts = dict(
        Cart.objects.filter(
            pk__in=[wanted for _, wanted, _ in turns if wanted], status=CartStatus.OPEN
        ).values_list("pk", "user_id")
    )
    out: dict[str, str] = {}
    for key, wanted, user_id in turns:
        if (
            wanted in open_carts
            and open_carts[wanted] in (None, user_id)
            and wanted not in out.values()
        ):
            out[key] = wanted
    users = {user_id for key, _, user_id in turns if key not in out} - {None}
    theirs: dict[int, str] = {}
    for pk, uid in (
        Cart.objects.filter(user_id__in=users, status=CartStatus.OPEN)
        .order_by("user_id", "-updated_at")
        .values_list("pk", "user_id")
    ):
        theirs.setdefault(uid, pk)
    taken = set(out.values())
    new = []
    for key, _, user_id in turns:
        if key in out:
            continue
        pk = theirs.get(user_id)
        if pk is None or pk in taken:
            cart = Cart(user_id=user_id)
            new.append(cart)
            pk = cart.pk
        out[key] = pk
        taken.add(pk)
    Cart.objects.bulk_create(new)
    return out


def put_held_lines(
    *, variant_id: int, price: Decimal, rows: list[tuple[str, int, int]]
) -> list[tuple[int, int, int | None]]:
    """Put held units into carts (``(cart_id, quantity, hold_id)``) as lines at ``price`` that
    name their hold; a line of the same item in the cart becomes the held one. Returns, for
    each line that was there already, ``(hold_id, its quantity before, the hold it named
    before or None)``, so the caller can tell the shopper which regular units gave way."""
    existing = {
        cart_id: (pk, qty, held)
        for cart_id, pk, qty, held in CartLine.objects.filter(
            cart_id__in=[r[0] for r in rows], variant_id=variant_id
        ).values_list("cart_id", "pk", "quantity", "deal_hold_id")
    }
    replaced = []
    for cart_id, quantity, hold_id in rows:
        if cart_id in existing:
            pk, before, held_before = existing[cart_id]
            CartLine.objects.filter(pk=pk).update(
                quantity=quantity, price_when_added=price, deal_hold_id=hold_id
            )
            replaced.append((hold_id, before, held_before))
    CartLine.objects.bulk_create(
        [
            CartLine(
                cart_id=cart_id,
                variant_id=variant_id,
                quantity=quantity,
                price_when_added=price,
                deal_hold_id=hold_id,
            )
            for cart_id, quantity, hold_id in rows
            if cart_id not in existing
        ]
    )
    return replaced
