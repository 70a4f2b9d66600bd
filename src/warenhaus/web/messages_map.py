"""Turning a refusal from a service into a sentence for the shopper or the operator.

Services say why in English (``DomainError.detail``) with a stable ``code``; the pages show a
translated sentence for the codes they know and the service's own words otherwise.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from warenhaus.core.errors import DomainError

MESSAGES = {
    # accounts
    "invalid_email": _("Please enter a valid e-mail address."),
    "email_taken": _("An account with this e-mail address already exists. Please log in instead."),
    "invalid_credentials": _("E-mail address or password is wrong."),
    "rate_limited": _("Too many attempts. Please wait %(minutes)s minutes and try again."),
    "invalid_login_link": _(
        "This login link has expired or has been used already. Please ask for a new one."
    ),
    "weak_password": _("Please choose a stronger password."),
    # catalog
    "invalid_vat_rate": _("The VAT rate must be either 19 or 7 percent."),
    "invalid_money": _(
        "Please enter a valid amount greater than zero with at most two decimal places, e.g. 49.97."
    ),
    "unknown_category": _("This category does not exist."),
    "title_required": _("A product needs a title."),
    "product_not_found": _("This product does not exist."),
    "sku_not_found": _("There is no item with this SKU."),
    "duplicate": _("A product with this slug or SKU exists already."),
    # stock and carts
    "out_of_stock": _("Sorry, only %(available)s of this item are available."),
    "invalid_quantity": _("Please enter a quantity between 1 and %(max)s."),
    "stock_below_allocated": _(
        "%(allocated)s units are reserved for open orders; the stock on hand cannot go below that."
    ),
    "cart_not_found": _("Your cart could not be found. Please start again."),
    "cart_closed": _("This cart has already been checked out. Please start a new one."),
    "not_available": _(
        "An item in your cart is no longer available. Please remove it to continue."
    ),
    "line_not_found": _("This item is not in your cart."),
    "cart_full": _("Your cart is full."),
    "cart_empty": _("Your cart is empty."),
    "invalid_shipping_method": _("Please choose a shipping method."),
    "invalid_address": _(
        "Please check the shipping address: name, street, postal code (five digits in Germany), city and country are needed."
    ),
    "country_not_served": _("We deliver to Germany and Austria only."),
    "price_changed": _(
        "Some prices in your cart have changed since you added the items. Please check the cart and submit again."
    ),
    "invalid_payment_method": _("Please choose a payment method."),
    "payment_declined": _(
        "The payment was declined. Nothing was charged; please choose another payment method."
    ),
    "payment_timeout": _(
        "The payment provider did not answer in time. Nothing was charged; please try again."
    ),
    # vouchers
    "voucher_typo": _("This code contains a typing error. Please check it and try again."),
    "voucher_unknown": _("We do not know this voucher code. Please check it."),
    "voucher_not_approved": _("This voucher is not valid."),
    "voucher_paused": _("This voucher cannot be used at the moment."),
    "voucher_revoked": _("This voucher has been withdrawn and can no longer be used."),
    "voucher_expired": _("This voucher has expired."),
    "voucher_not_yet_valid": _("This voucher is not valid yet."),
    "voucher_exhausted": _("This voucher has already been used up."),
    "voucher_budget_exhausted": _(
        "This voucher promotion has ended because its budget is used up."
    ),
    "voucher_blocked": _("This voucher code has been blocked."),
    "limit_per_customer": _("You have already used this voucher as often as allowed."),
    "voucher_min_basket": _("This voucher applies from an order value of %(min_basket)s."),
    "voucher_channel": _("This voucher cannot be used in the online shop."),
    "voucher_not_eligible": _("This voucher does not apply to you or to the items in your cart."),
    "voucher_not_stackable": _(
        "This voucher cannot be combined with the other vouchers in your cart."
    ),
    "voucher_not_in_cart": _("This voucher is not in your cart."),
    # campaigns (console)
    "campaign_not_found": _("This campaign does not exist."),
    "campaign_not_draft": _(
        "Only a draft can be approved; this campaign has been decided on already."
    ),
    "campaign_not_editable": _(
        "Only a draft can be edited. To change an approved campaign, pause and revoke it and make a new one."
    ),
    "four_eyes_required": _(
        "You made or edited this campaign. Someone who did neither must approve it (four eyes)."
    ),
    "codes_widen_campaign": _(
        "This campaign has been approved: codes added now are single-use. For codes that several customers may use, make a new campaign and have it approved."
    ),
    "dangerous_campaign": _(
        "This campaign has a dangerous shape. Change it, or give a reason why it should be approved anyway."
    ),
    "campaign_has_public_code": _(
        "This campaign has one public code; it cannot have generated or imported codes."
    ),
    "campaign_has_codes": _(
        "This draft has generated or imported codes; it cannot switch to one public code."
    ),
    "code_taken": _("This code is already in use by another campaign."),
    "code_not_in_campaign": _(
        "This code does not belong to this campaign. Block it on its own campaign's page."
    ),
    "invalid_code": _(
        "A public code has 4 to 32 letters and digits and must not be exactly 12 characters long."
    ),
    "invalid_count": _("Please enter a number of codes between 1 and %(max)s."),
    "code_collision": _("Please try again."),
    "invalid_pattern": _("A pattern is at least 4 letters or digits followed by *, e.g. SOMMER*."),
    "alert_not_found": _("This alert does not exist."),
    # remediation (console)
    "invalid_selector": _(
        "Please choose the orders in one way only: by voucher codes or campaign, by SKU below a unit price, or by order numbers."
    ),
    "unknown_voucher_code": _("This voucher code is not a code of this shop. Please check it."),
    "invalid_actions": _(
        "Please choose what to do: cancel or hold the orders, notify the customers, or give them a goodwill voucher."
    ),
    "conflicting_actions": _("Please choose either cancel or hold, not both."),
    "goodwill_too_large": _("A goodwill voucher is at most %(maximum)s."),
    "forbidden": _("Your role does not include this action."),
    "remediation_not_found": _("This remediation job does not exist."),
    "remediation_running": _(
        "A worker is running this job right now. Please wait until it has finished."
    ),
    # orders
    "reason_required": _(
        "Please give a reason; it goes into the order history and the audit trail."
    ),
    "invalid_transition": _(
        "This is not possible in the order's current status (%(current_status)s)."
    ),
    "order_not_found": _("This order does not exist."),
    "stock_inconsistent": _("The stock records do not cover this shipment."),
    # flash deals
    "hold_expired": _(
        "The deal price was held for you until a deadline that has passed; the item is now at its regular price. Please check your cart and submit again."
    ),
    "line_held": _(
        "These units are held for you at the deal price until the deadline shown; their quantity cannot change. Remove the line to let them go."
    ),
    "deal_ended": _("This deal is over."),
    "deal_not_sold_out": _(
        "Units of this deal are still free: please join the queue instead of the wait list."
    ),
    "deal_not_found": _("This deal does not exist."),
    "ticket_not_found": _(
        "We do not know this place in the queue. Please join the queue again from the deal page."
    ),
    "waitlist_entry_not_found": _("We do not know this place on the wait list."),
    "identity_required": _("Please log in or give your e-mail address to join the queue."),
    "email_required": _(
        "Please give your e-mail address, so that we can tell you when a unit becomes free."
    ),
    "deal_price_not_lower": _("The deal price must be below the regular price."),
}

#: why a password is refused, by the password validator's code (accounts.passwords)
PASSWORD_REASONS = {
    "password_too_short": _(
        "The password is too short: it needs at least %(min_length)s characters."
    ),
    "password_contains_email": _("The password must not be or contain your e-mail address."),
    "password_too_common": _("This password is on lists of common or breached passwords."),
    "password_too_guessable": _(
        "The password is too easy to guess: it resembles common or breached passwords, words, names, dates or simple patterns such as repeated characters or keyboard rows."
    ),
}
PASSWORD_TIP = _("Several unrelated words make a long password that is easy to remember.")

#: the per-customer limit of a flash deal, by what the limit was counted on (vouchers have
#: the same code without a ``reason``)
DEAL_LIMITS = {
    "quantity": _("At most %(limit)s per customer."),
    "user": _("You already have %(limit)s of this deal (at most %(limit)s per customer)."),
    "email": _(
        "This e-mail address already has %(limit)s of this deal (at most %(limit)s per customer)."
    ),
    "address": _(
        "Another order of this deal goes to the same address (at most %(limit)s per household)."
    ),
    "payment": _("This card was already used for this deal (at most %(limit)s per household)."),
}


def error_message(err: DomainError) -> str:
    """A readable sentence in the active language."""
    template = MESSAGES.get(err.code)
    if err.code == "limit_per_customer" and err.extra.get("reason") in DEAL_LIMITS:
        template = DEAL_LIMITS[err.extra["reason"]]
    if template is None:
        return str(err.detail)
    params = {"max": settings.MAX_LINE_QUANTITY, **err.extra}
    if err.code == "rate_limited":
        params["minutes"] = minutes_to_wait(err)
    if err.code == "invalid_transition" and "current_status" in params:
        from .templatetags.shop import status_label

        params["current_status"] = status_label(params["current_status"])
    if err.code in ("voucher_min_basket", "goodwill_too_large"):
        from .templatetags.shop import format_money

        for key in ("min_basket", "maximum"):
            if key in params:
                params[key] = format_money(params[key])
    if err.code == "weak_password":
        return password_message(err)
    try:
        return str(template) % params if "%(" in str(template) else str(template)
    except (KeyError, ValueError, TypeError):
        return str(err.detail)


def minutes_to_wait(err: DomainError) -> int:
    """A 429's Retry-After in whole minutes, rounded up."""
    return max(1, (int(err.extra.get("retry_after", 60)) + 59) // 60)


def password_message(err: DomainError) -> str:
    """Each reason a password is refused, and a tip; the service's words for reasons unknown here."""
    reasons = err.extra.get("reasons") or []
    if not reasons or any(r not in PASSWORD_REASONS for r in reasons):
        return str(err.detail)
    min_length = err.extra.get("min_length", 12)
    return " ".join(
        [str(PASSWORD_REASONS[r]) % {"min_length": min_length} for r in dict.fromkeys(reasons)]
        + [str(PASSWORD_TIP)]
    )
