"""Campaigns, their codes, the redemptions, and the codes applied to carts.

The limits a campaign promises are held by the database: ``redeemed_count`` cannot pass
``total_limit``, ``spent_amount`` cannot pass ``budget``, a code's ``uses`` cannot pass its
``max_uses``, a customer's uses cannot pass the per-customer limit copied onto their usage row,
and a code redeems at most once per order. The services change these counters only with
conditional UPDATEs, in the order campaign -> code -> customer usage.

Four eyes are held by the database too: everyone who made or edited a campaign has a row in
:class:`CampaignSignoff`, the approval inserts the approver's row there (refused if they have
one), and the campaign's ``approval`` names that row (see :mod:`warenhaus.core.signoffs`).
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from warenhaus.core.channels import Channel
from warenhaus.core.models import Signoff
from warenhaus.core.signoffs import approval_constraint


class DiscountKind(models.TextChoices):
    FIXED = "fixed", "fixed amount"
    PERCENT = "percent", "percent"


class Eligibility(models.TextChoices):
    ANY = "any", "anyone"
    REGISTERED = "registered", "registered customers"
    NEW = "new", "new customers (first order)"


class Stacking(models.TextChoices):
    EXCLUSIVE = "exclusive", "exclusive"
    STACKABLE = "stackable", "stackable"


class CodeMode(models.TextChoices):
    PUBLIC = "public", "one public code"
    UNIQUE = "unique", "unique codes"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "draft"
    APPROVED = "approved", "approved"
    PAUSED = "paused", "paused"
    REVOKED = "revoked", "revoked"


CHANNELS = (Channel.WEB, Channel.PHONE, Channel.API)


class Campaign(models.Model):
    name = models.CharField(max_length=200)
    purpose = models.TextField(blank=True)
    discount_kind = models.CharField(max_length=10, choices=DiscountKind.choices)
    discount_value = models.DecimalField(
        max_digits=10, decimal_places=2, help_text="EUR for fixed, percent for percent."
    )
    discount_cap = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Largest amount a percent discount gives.",
    )
    min_basket = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"))
    max_share = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("50.00"),
        help_text="Largest share of the basket (percent) the discount may take.",
    )
    # Ids, not many-to-many rows, so that evaluating a cart costs no extra query. Categories are
    # stored with their sub-categories at the time the campaign is made. Empty means everything.
    eligible_category_ids = models.JSONField(default=list, blank=True)
    eligible_product_ids = models.JSONField(default=list, blank=True)
    customer_eligibility = models.CharField(
        max_length=12, choices=Eligibility.choices, default=Eligibility.ANY
    )
    channels = models.JSONField(default=list)
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True)
    total_limit = models.PositiveIntegerField(null=True, blank=True)
    per_customer_limit = models.PositiveIntegerField(null=True, blank=True)
    budget = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    stacking = models.CharField(max_length=10, choices=Stacking.choices, default=Stacking.EXCLUSIVE)
    code_mode = models.CharField(max_length=10, choices=CodeMode.choices)
    release_redemption_on_cancel = models.BooleanField(default=True)
    expected_redemptions_per_hour = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="What the campaign is made for; the leak monitors compare against it.",
    )
    auto_pause = models.BooleanField(
        default=True, help_text="Let the leak monitors pause the campaign by themselves."
    )
    monitor_settings = models.JSONField(
        default=dict,
        blank=True,
        help_text='Per-campaign thresholds of the leak monitors, e.g. {"rate": {"factor": 3}}; missing keys take the defaults in promotions.monitors.',
    )
    status = models.CharField(
        max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT, db_index=True
    )
    status_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approval = models.ForeignKey(
        "CampaignSignoff",
        to_field="key",
        null=True,
        blank=True,
        on_delete=models.RESTRICT,
        related_name="+",
        help_text="The approver's row among those who took part: the database refuses it for an author or an editor.",
    )
    approval_override_reason = models.TextField(blank=True)
    redeemed_count = models.PositiveIntegerField(default=0)
    spent_amount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(redeemed_count__gte=0), name="campaign_redeemed_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(spent_amount__gte=0), name="campaign_spent_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(total_limit__isnull=True) | Q(redeemed_count__lte=F("total_limit")),
                name="campaign_within_total_limit",
            ),
            models.CheckConstraint(
                condition=Q(budget__isnull=True) | Q(spent_amount__lte=F("budget")),
                name="campaign_within_budget",
            ),
            models.CheckConstraint(
                condition=Q(discount_value__gt=0), name="campaign_discount_positive"
            ),
            models.CheckConstraint(
                condition=~Q(discount_kind=DiscountKind.PERCENT) | Q(discount_value__lte=100),
                name="campaign_percent_at_most_100",
            ),
            models.CheckConstraint(
                condition=Q(max_share__gt=0) & Q(max_share__lte=100),
                name="campaign_max_share_range",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in CampaignStatus]),
                name="campaign_status_known",
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="campaign_window_ordered",
            ),
            # four eyes, held by the database too: a campaign that was ever live was approved by someone
            # other than its author (a draft may be revoked without approval)
            models.CheckConstraint(
                condition=Q(
                    approved_by__isnull=True,
                    status__in=[CampaignStatus.DRAFT, CampaignStatus.REVOKED],
                )
                | (Q(approved_by__isnull=False) & ~Q(approved_by=F("created_by"))),
                name="campaign_four_eyes",
            ),
            # and not by anyone who made or edited it: the approver's own row in CampaignSignoff
            approval_constraint(name="campaign_approval_is_the_approvers_signoff"),
        ]

    def __str__(self):
        return self.name

    @property
    def audit_key(self):
        return self.pk


class CampaignSignoff(Signoff):
    """Who made, edited and approved a campaign: one row per person (author, editor or approver)."""

    subject = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="signoffs")

    class Meta(Signoff.Meta):
        pass

    @property
    def audit_key(self):
        return self.key


class CodeStatus(models.TextChoices):
    ACTIVE = "active", "active"
    BLOCKED = "blocked", "blocked"


class CodeSource(models.TextChoices):
    PUBLIC = "public", "public"
    GENERATED = "generated", "generated"
    IMPORTED = "imported", "imported"


class CodeBatch(models.Model):
    """One call that generated or imported codes (the codes are shown once, in its answer)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="batches")
    source = models.CharField(max_length=10, choices=CodeSource.choices)
    count = models.PositiveIntegerField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)


class Code(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="codes")
    batch = models.ForeignKey(
        CodeBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="codes"
    )
    digest = models.CharField(
        max_length=64,
        unique=True,
        help_text="HMAC-SHA256 of the normalised code; the code itself is not stored.",
    )
    hint = models.CharField(max_length=3, help_text="The last characters, for people.")
    length = models.PositiveSmallIntegerField()
    head4 = models.CharField(max_length=24, blank=True, db_index=True)
    head5 = models.CharField(max_length=24, blank=True)
    head6 = models.CharField(max_length=24, blank=True)
    head7 = models.CharField(max_length=24, blank=True)
    head8 = models.CharField(max_length=24, blank=True)
    source = models.CharField(max_length=10, choices=CodeSource.choices)
    status = models.CharField(max_length=10, choices=CodeStatus.choices, default=CodeStatus.ACTIVE)
    blocked_reason = models.TextField(blank=True)
    blocked_at = models.DateTimeField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(uses__gte=0), name="code_uses_not_negative"),
            models.CheckConstraint(
                condition=Q(max_uses__isnull=True) | Q(uses__lte=F("max_uses")),
                name="code_within_max_uses",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in CodeStatus]), name="code_status_known"
            ),
            models.CheckConstraint(
                condition=~Q(source=CodeSource.GENERATED) | Q(max_uses__isnull=False, max_uses=1),
                name="code_generated_single_use",
            ),
            models.UniqueConstraint(
                fields=["campaign"],
                condition=Q(source=CodeSource.PUBLIC),
                name="campaign_one_public_code",
            ),
        ]

    @property
    def display_hint(self) -> str:
        return f"…{self.hint}"

    @property
    def audit_key(self):
        return f"{self.pk} (…{self.hint})"


class CustomerUsage(models.Model):
    """How often one customer redeemed a campaign; ``max_uses`` is the campaign's per-customer
    limit at the time of the first use, so the database can hold it."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    #: whom the use is counted against (:func:`.services.redeemer_key`)
    redeemer_key = models.CharField(max_length=300, db_column="customer_key")
    uses = models.PositiveIntegerField(default=0)
    max_uses = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "redeemer_key"], name="usage_unique_customer"
            ),
            models.CheckConstraint(
                condition=Q(max_uses__isnull=True) | Q(uses__lte=F("max_uses")),
                name="usage_within_limit",
            ),
        ]


class Redemption(models.Model):
    """One code used on one order: what the leak monitors read (when, from where, by whom, on
    which channel, on what basket) and what remediation selects orders by."""

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="redemptions")
    code = models.ForeignKey(Code, on_delete=models.PROTECT, related_name="redemptions")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="redemptions")
    redeemer_key = models.CharField(max_length=300, db_column="customer_key")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    basket_value = models.DecimalField(max_digits=12, decimal_places=2)
    channel = models.CharField(max_length=10)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    new_account = models.BooleanField(
        default=False, help_text="The customer's account was made shortly before."
    )
    guest = models.BooleanField(default=False, help_text="Ordered without an account.")
    created_at = models.DateTimeField(db_index=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["campaign", "created_at"])]
        constraints = [
            models.UniqueConstraint(fields=["code", "order"], name="redemption_once_per_order"),
            models.UniqueConstraint(
                fields=["campaign", "order"], name="redemption_one_code_per_campaign_per_order"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="redemption_amount_positive"),
        ]


class CartVoucher(models.Model):
    cart = models.ForeignKey("checkout.Cart", on_delete=models.CASCADE, related_name="vouchers")
    code = models.ForeignKey(Code, on_delete=models.CASCADE, related_name="+")
    applied_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["applied_at", "id"]
        constraints = [models.UniqueConstraint(fields=["cart", "code"], name="cart_voucher_unique")]


class BlockRule(models.Model):
    """A pattern block (``SOMMER*``): existing codes that match are blocked when it is made,
    and every code typed later is checked against the active rules."""

    pattern = models.CharField(max_length=40)
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    is_active = models.BooleanField(default=True)


class Alert(models.Model):
    """One incident of one leak monitor on one campaign: written when the monitor trips, kept
    open (``resolved_at`` empty) while it keeps tripping, so that a sweep every few seconds writes
    one alert per incident, not one per sweep."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="alerts")
    monitor = models.CharField(max_length=30)
    measured = models.FloatField(help_text="What the monitor measured when it tripped.")
    threshold = models.FloatField()
    peak = models.FloatField(help_text="The highest value measured during the incident.")
    window_seconds = models.PositiveIntegerField()
    message = models.TextField()
    paused = models.BooleanField(
        default=False, help_text="The campaign was paused because of this alert."
    )
    created_at = models.DateTimeField(db_index=True)
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "monitor"],
                condition=Q(resolved_at__isnull=True),
                name="alert_one_open_incident_per_monitor",
            ),
        ]

    @property
    def audit_key(self):
        return self.pk
