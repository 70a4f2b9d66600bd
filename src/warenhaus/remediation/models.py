"""Remediation jobs: one job type for every clean-up after something slipped through.

A job names a selection of orders (by voucher codes or campaigns, by SKU and unit price below a
floor, or by order numbers, each optionally within a time window) and the actions to take
(cancel what has not shipped, or hold it; notify each affected customer once; give each a
single-use goodwill voucher). It is first a preview; when executed, the selection is written
down as one :class:`Item` per order, and the items are worked off in chunks, each chunk in one
transaction with the orders it changes. An item is done exactly once, so executing twice, or
resuming after a crash, changes nothing that was already done.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class JobState(models.TextChoices):
    PREVIEW = "preview", "preview"  # a dry run: nothing done yet
    QUEUED = "queued", "queued"  # executed, waiting for a worker
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"  # gave up after repeated errors; execute again to resume


class Phase(models.TextChoices):
    ORDERS = "orders", "orders"
    CUSTOMERS = "customers", "customers"


class Job(models.Model):
    reason = models.TextField(help_text="Why: goes into every order's history and the audit trail.")
    customer_note = models.TextField(
        blank=True, help_text="A sentence added to the customers' apology."
    )
    selector = models.JSONField()
    actions = models.JSONField()
    dry_run = models.BooleanField(default=True)
    state = models.CharField(
        max_length=10, choices=JobState.choices, default=JobState.PREVIEW, db_index=True
    )
    phase = models.CharField(max_length=10, choices=Phase.choices, default=Phase.ORDERS)
    preview = models.JSONField(default=dict)
    goodwill_campaign = models.ForeignKey(
        "promotions.Campaign", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # progress
    total = models.PositiveIntegerField(default=0, help_text="Orders selected at execution.")
    processed = models.PositiveIntegerField(default=0)
    customers_total = models.PositiveIntegerField(default=0, help_text="Customers to notify.")
    customers_done = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    held = models.PositiveIntegerField(default=0)
    noted = models.PositiveIntegerField(default=0)
    out_of_reach = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    notified = models.PositiveIntegerField(default=0)
    vouchers_issued = models.PositiveIntegerField(default=0)
    # who and when
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    executed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    executed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # the lease of the worker running it (resume after a crash)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(processed__lte=models.F("total")),
                name="remediation_processed_within_total",
            ),
            models.CheckConstraint(
                condition=Q(state__in=[s.value for s in JobState]), name="remediation_state_known"
            ),
            # goodwill vouchers are money given away: executed (their campaign approved) by a second person
            models.CheckConstraint(
                condition=Q(goodwill_campaign__isnull=True)
                | (Q(executed_by__isnull=False) & ~Q(executed_by=models.F("created_by"))),
                name="remediation_goodwill_four_eyes",
            ),
        ]

    def __str__(self):
        return f"remediation #{self.pk}"

    @property
    def audit_key(self):
        return self.pk

    @property
    def percent(self) -> int:
        """Progress over both phases, each its own share (orders 60 %, customers 40 % when
        customers are told), so that it only ever grows even when the number of customers is
        known only after the orders phase."""
        if self.state == JobState.DONE:
            return 100
        orders_share = 60 if self.actions.get("notify") else 100
        done = orders_share * (
            self.processed / self.total
            if self.total
            else (1 if self.phase == Phase.CUSTOMERS else 0)
        )
        if self.phase == Phase.CUSTOMERS and self.customers_total:
            done += (100 - orders_share) * self.customers_done / self.customers_total
        return min(99, int(done))


class Outcome(models.TextChoices):
    PENDING = "pending", "pending"
    CANCELLED = "cancelled", "cancelled"
    HELD = "held", "put on hold"
    NOTED = "noted", "left as is, customer told"
    OUT_OF_REACH = "out_of_reach", "already shipped"
    UNCHANGED = "unchanged", "nothing to do"


#: outcomes whose customer is affected (told once, given the goodwill voucher)
AFFECTED = (Outcome.CANCELLED, Outcome.HELD, Outcome.NOTED)


class Item(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="items")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="+")
    order_number = models.CharField(max_length=20)
    customer_key = models.CharField(
        max_length=300, help_text="user:<id>, or email:<address> for guests"
    )
    email = models.EmailField()
    language = models.CharField(max_length=8, default="de")
    status_before = models.CharField(max_length=20)
    outcome = models.CharField(max_length=15, choices=Outcome.choices, default=Outcome.PENDING)
    detail = models.CharField(max_length=200, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "order"], name="remediation_item_once_per_order")
        ]
        indexes = [
            models.Index(fields=["job", "outcome", "order"]),
            models.Index(fields=["job", "customer_key"]),
        ]
