"""Forms: the shape of what a page accepts. The rules themselves live in the services; a form
only turns text into the types a service expects and says what is missing."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from warenhaus.checkout.shipping import METHODS
from warenhaus.orders.models import OrderStatus

COUNTRY_CHOICES = [("DE", _("Germany")), ("AT", _("Austria"))]
PAYMENT_CHOICES = [("invoice", _("Invoice (pay after delivery)")), ("test", _("Test card"))]


def payment_choices():
    from warenhaus.checkout.payments import enabled

    on = set(enabled())
    return [(value, label) for value, label in PAYMENT_CHOICES if value in on]


TEST_OUTCOME_CHOICES = [
    ("approve", _("approve")),
    ("decline", _("decline")),
    ("timeout", _("time out")),
]


def shipping_choices():
    return [(m.code, m.label) for m in METHODS.values()]


class AddToCartForm(forms.Form):
    sku = forms.CharField(max_length=64)
    quantity = forms.IntegerField(
        label=_("Quantity"), min_value=1, max_value=settings.MAX_LINE_QUANTITY, initial=1
    )


class QuantityForm(forms.Form):
    sku = forms.CharField(max_length=64)
    quantity = forms.IntegerField(
        label=_("Quantity"), min_value=1, max_value=settings.MAX_LINE_QUANTITY
    )


class SkuForm(forms.Form):
    sku = forms.CharField(max_length=64)


class VoucherForm(forms.Form):
    code = forms.CharField(label=_("Voucher code"), max_length=64)


class VoucherRemoveForm(forms.Form):
    voucher = forms.CharField(max_length=20)


class ShippingForm(forms.Form):
    shipping_method = forms.ChoiceField(label=_("Shipping method"), choices=shipping_choices)


class CheckoutForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"), max_length=254)
    name = forms.CharField(label=_("Full name"), max_length=200)
    street = forms.CharField(label=_("Street and number"), max_length=200)
    postal_code = forms.CharField(label=_("Postal code"), max_length=10)
    city = forms.CharField(label=_("City"), max_length=200)
    country = forms.ChoiceField(label=_("Country"), choices=COUNTRY_CHOICES, initial="DE")
    shipping_method = forms.ChoiceField(
        label=_("Shipping method"), choices=shipping_choices, widget=forms.RadioSelect
    )
    payment_method = forms.ChoiceField(
        label=_("Payment method"),
        choices=payment_choices,
        initial="invoice",
        widget=forms.RadioSelect,
    )
    test_outcome = forms.ChoiceField(
        label=_("Test card outcome"),
        choices=TEST_OUTCOME_CHOICES,
        initial="approve",
        required=False,
    )

    def address(self) -> dict:
        return {
            k: self.cleaned_data[k] for k in ("name", "street", "postal_code", "city", "country")
        }

    def payment_token(self) -> str:
        if self.cleaned_data["payment_method"] == "test":
            return self.cleaned_data.get("test_outcome") or "approve"
        return ""


class LoginForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"), max_length=254)
    password = forms.CharField(label=_("Password"), widget=forms.PasswordInput, max_length=200)


class LoginLinkForm(forms.Form):
    email = forms.EmailField(label=_("E-mail address"), max_length=254)


class RegisterForm(forms.Form):
    # the policy is the service's (accounts.passwords): it says why a password is refused
    name = forms.CharField(label=_("Name"), max_length=150, required=False)
    email = forms.EmailField(label=_("E-mail address"), max_length=254)
    password = forms.CharField(
        label=_("Password"),
        max_length=200,
        widget=forms.PasswordInput(attrs={"minlength": 12, "autocomplete": "new-password"}),
        help_text=_(
            "At least 12 characters, not your e-mail address, not a common password. Several unrelated words are easy to remember and hard to guess."
        ),
    )


# --- console ---------------------------------------------------------------------------------


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    customer_note = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("Please give a reason."))
        return reason


class OrderFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=lambda: [("", _("all"))] + list(OrderStatus.choices),
    )
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    placed_from = forms.DateField(
        label=_("Placed from"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d", "%d.%m.%Y"],
    )
    placed_to = forms.DateField(
        label=_("Placed until"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d", "%d.%m.%Y"],
    )


class AuditFilterForm(forms.Form):
    actor = forms.CharField(label=_("Actor e-mail"), required=False, max_length=254)
    action = forms.CharField(label=_("Action"), required=False, max_length=80)
    object_type = forms.CharField(label=_("Object type"), required=False, max_length=60)
    object_id = forms.CharField(label=_("Object id"), required=False, max_length=120)
    day_from = forms.DateField(
        label=_("From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d", "%d.%m.%Y"],
    )
    day_to = forms.DateField(
        label=_("Until"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d", "%d.%m.%Y"],
    )


class ProductForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    brand = forms.CharField(label=_("Brand"), max_length=100, required=False)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 5})
    )
    category = forms.ChoiceField(label=_("Category"))
    vat_rate = forms.ChoiceField(label=_("VAT rate"), choices=[("19", "19 %"), ("7", "7 %")])
    is_active = forms.BooleanField(label=_("Active (visible in the shop)"), required=False)

    def __init__(self, *args, categories=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [(c.slug, c.name) for c in categories]

    def changes(self) -> dict:
        return dict(self.cleaned_data)


_DE_AMOUNT = re.compile(r"^\d{1,3}(\.\d{3})+(,\d{1,2})?$|^\d+(,\d{1,2})?$")


def normalise_amount(raw: str, language: str | None = None) -> str:
    """Turn what a person types (``1.299,00`` in German, ``1,299.00`` in English, ``49.97``
    anywhere) into the decimal string the services expect. Unclear input is passed through for
    the service to refuse."""
    text = (raw or "").strip().replace("€", "").replace("\u00a0", "").replace(" ", "")
    language = (language or translation.get_language() or "de").lower()
    if language.startswith("de") and _DE_AMOUNT.match(text):
        return text.replace(".", "").replace(",", ".")
    if "," in text and "." in text:
        return text.replace(",", "")  # English thousands
    if "," in text and re.match(r"^\d+,\d{1,2}$", text):
        return text.replace(",", ".")
    return text


class PriceForm(forms.Form):
    amount = forms.CharField(label=_("New gross price (EUR)"), max_length=20)
    reason = forms.CharField(label=_("Reason"), max_length=2000, required=False)

    def clean_amount(self):
        text = normalise_amount(self.cleaned_data["amount"])
        if not re.fullmatch(r"\d{1,7}(\.\d{1,2})?", text):  # no exponents, signs or a third decimal
            raise forms.ValidationError(_("Please enter an amount such as 49,97."))
        value = Decimal(text)
        if not value.is_finite() or value <= 0:
            raise forms.ValidationError(_("The price must be greater than zero."))
        return text


class StockForm(forms.Form):
    on_hand = forms.IntegerField(label=_("Units on hand"), min_value=0, max_value=10_000_000)
    reason = forms.CharField(label=_("Reason"), max_length=2000, required=False)
