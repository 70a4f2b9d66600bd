"""Use-cases of the promotions domain, one module per concern:

- :mod:`.campaigns`: making and approving campaigns (four eyes), the kill switch for a campaign;
- :mod:`.codes`: codes generated, public and imported; finding a typed code; blocking codes;
- :mod:`.redemption`: vouchers in carts (promotions' side of checkout's discounts port) and
  redeeming them inside the checkout's transaction (:mod:`..release` gives them back);
- :mod:`.alerts`: the leak monitors' sweep and its alerts.

Four eyes: whoever made a campaign, edited it or added codes to it as a draft has a row in its
sign-offs (:mod:`warenhaus.core.signoffs`), and the approval's own row cannot join theirs. Once
approved, a campaign keeps its shape: codes added later are single-use.

Every staff action writes an audit entry in the same transaction. Counters change only through
conditional UPDATEs, always in the order campaign -> code -> redeemer usage, so concurrent
checkouts neither deadlock nor pass a limit.
"""

from ..sql import cart_has_vouchers as has_vouchers_sql  # noqa: F401
from .alerts import acknowledge_alert, run_monitors  # noqa: F401
from .campaigns import (  # noqa: F401
    approve_campaign,
    create_campaign,
    dangers,
    pause_campaign,
    resume_campaign,
    revoke_campaign,
    shared_codes,
    validate_monitor_settings,
    worst_case,
)
from .codes import (  # noqa: F401
    PATTERN,
    block_code,
    block_pattern,
    codes_from_csv,
    find_code,
    generate_codes,
    import_codes,
)
from .common import AUDIT_FIELDS, COUNT_MAX  # noqa: F401
from .redemption import (  # noqa: F401
    CartCodes,
    cart_voucher_rows,
    check_for_checkout,
    evaluate_cart,
    move_cart_vouchers,
    redeem,
    redeemer_key,
)
