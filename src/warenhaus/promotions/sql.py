"""The hand-written SQL of promotions, each statement named with the reason the ORM does not
write it; the measurements are in ``docs/benchmarks.md``.

Both are expressions for another query's SELECT list, so what they ask costs no statement of its
own. Table and column names come from the models, quoted; values are parameters.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL

from .models import BlockRule, CartVoucher


def cart_has_vouchers(cart_id) -> RawSQL:
    """Does the cart hold a voucher? Asked in the cart's line query, so a cart without vouchers
    costs no voucher query (docs/benchmarks.md, "Checkout under load": carts without vouchers
    skip the voucher evaluation)."""
    qn = connection.ops.quote_name
    table = qn(CartVoucher._meta.db_table)
    return RawSQL(  # noqa: S611  (quoted model names, the cart id as parameter)
        f"EXISTS (SELECT 1 FROM {table} WHERE {qn('cart_id')} = %s)",  # noqa: S608
        (cart_id,),
        output_field=BooleanField(),
    )


def code_blocked_by_rule(code: str) -> RawSQL:
    """Does an active pattern block (``SOMMER*``) match ``code``? Asked in the code's own query
    (docs/benchmarks.md, "Vouchers: applying a code", item 3). A pattern is letters and digits
    and a final ``*``: it matches the codes that start with what precedes the ``*`` (the same
    answer as ``fnmatch``, tested)."""
    qn = connection.ops.quote_name
    table, pattern = qn(BlockRule._meta.db_table), qn("pattern")
    return RawSQL(  # noqa: S611  (quoted model names, the code as parameter)
        f"EXISTS (SELECT 1 FROM {table} WHERE {table}.{qn('is_active')}"  # noqa: S608
        f" AND SUBSTR(%s, 1, LENGTH({table}.{pattern}) - 1) || '*' = {table}.{pattern})",
        (code,),
        output_field=BooleanField(),
    )
