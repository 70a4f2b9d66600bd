"""Why a voucher does not apply, and why staff may not do something to a campaign: one stable
code per reason (listed in the README)."""

from __future__ import annotations

from warenhaus.core.errors import Conflict, DomainError, Forbidden
from warenhaus.core.models import SignoffRole

#: code -> (HTTP status, English detail)
REASONS: dict[str, tuple[int, str]] = {
    "voucher_typo": (
        422,
        "This does not look like a valid code; please check it for typing errors.",
    ),
    "voucher_unknown": (422, "There is no voucher with this code."),
    "voucher_not_approved": (409, "This voucher has not been approved and cannot be used."),
    "voucher_paused": (409, "This voucher is paused at the moment."),
    "voucher_revoked": (409, "This voucher has been withdrawn."),
    "voucher_expired": (409, "This voucher has expired."),
    "voucher_not_yet_valid": (409, "This voucher is not valid yet."),
    "voucher_exhausted": (409, "This voucher has been used up."),
    "voucher_budget_exhausted": (409, "The budget of this voucher campaign is used up."),
    "voucher_blocked": (409, "This voucher code has been blocked."),
    "limit_per_customer": (409, "You have already used this voucher as often as allowed."),
    "voucher_min_basket": (409, "The basket is below this voucher's minimum order value."),
    "voucher_channel": (422, "This voucher cannot be used on this channel."),
    "voucher_not_eligible": (
        422,
        "This voucher does not apply to you or to the items in your cart.",
    ),
    "voucher_not_stackable": (
        409,
        "This voucher cannot be combined with the other vouchers in your cart.",
    ),
}


class VoucherRefused(DomainError):
    title = "The voucher does not apply"
    #: the answer depends on the cart and the campaign as they are now (the shopper removes the
    #: voucher, staff resume the campaign): a checkout refused for it is not remembered for its
    #: Idempotency-Key, so the same key can be sent again once the cart is changed
    retryable = True

    def __init__(self, code: str, detail: str = "", **extra):
        status, default = REASONS[code]
        super().__init__(detail or default, code=code, status=status, **extra)


#: staff refusals that keep a campaign as it was approved: code -> (HTTP status, English detail)
CAMPAIGN_REFUSALS: dict[str, tuple[int, str]] = {
    "four_eyes_required": (
        403,
        "A campaign must be approved by someone who neither made nor edited it (four eyes).",
    ),
    "codes_widen_campaign": (
        409,
        "Codes added to an approved campaign are single-use (max_uses_per_code 1), as the campaign was approved. "
        "For codes that several customers may use, make a new campaign and have it approved.",
    ),
}

#: what ``took_part_as`` adds to the four-eyes refusal
_PARTS = {
    SignoffRole.AUTHOR: "you made it",
    SignoffRole.EDITOR: "you edited it",
    SignoffRole.APPROVER: "you approved it",
}


def campaign_refusal(code: str, detail: str = "", **extra) -> DomainError:
    status, default = CAMPAIGN_REFUSALS[code]
    return (Forbidden if status == 403 else Conflict)(
        detail or default, code=code, status=status, **extra
    )


def four_eyes_refusal(part: str) -> DomainError:
    """The approver made or edited the campaign (``part``: their row in its sign-offs; empty
    when no author is known)."""
    default = CAMPAIGN_REFUSALS["four_eyes_required"][1]
    detail = f"{default[:-1]}; {_PARTS[part]}." if part in _PARTS else default
    return campaign_refusal("four_eyes_required", detail, took_part_as=part or None)
