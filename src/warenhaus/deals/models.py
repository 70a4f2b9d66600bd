"""Flash deals: a contingent of one variant at a deal price for a while, the holds that reserve
units of it for admitted shoppers, what was sold, the household usage that the per-customer
limit is counted on, the wait list, and (for the embedded waiting room) the queue's tickets.

What the database holds, whatever the code does: ``sold + held <= units`` (never more than the
contingent), a household's units per deal within the limit, one hold per ticket or wait-list
entry, one ticket per person per deal. Counters change only with conditional UPDATEs
(:mod:`.services`).
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from .waiting_room.base import TicketState


class DealState(models.TextChoices):
    """What a shopper sees of a deal (computed from its times and counters, never stored)."""

    SCHEDULED = "scheduled", "scheduled"
    LIVE = "live", "live"
    SOLD_OUT = "sold_out", "sold out"
    ENDED = "ended", "ended"
    CANCELLED = "cancelled", "cancelled"


class Deal(models.Model):
    variant = models.ForeignKey("catalog.Variant", on_delete=models.PROTECT, related_name="deals")
    deal_price = models.DecimalField(max_digits=10, decimal_places=2)
    regular_price = models.DecimalField(
        max_digits=10, decimal_places=2, help_text="The variant's price when the deal was made."
    )
    lowest_price_30_days = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        help_text="The lowest price of the 30 days before the deal starts (EU price-reduction rules).",
    )
    units = models.PositiveIntegerField()
    sold = models.PositiveIntegerField(default=0)
    held = models.PositiveIntegerField(default=0)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    limit_per_customer = models.PositiveSmallIntegerField(default=1)
    hold_minutes = models.PositiveSmallIntegerField(default=10)
    offer_minutes = models.PositiveSmallIntegerField(
        default=30, help_text="How long a wait-list offer of a returned unit lasts."
    )
    admissions_per_minute = models.PositiveIntegerField(
        help_text="Pacing: how many shoppers are let in per minute (what checkout can take)."
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    released_units = models.PositiveIntegerField(
        default=0,
        help_text="Units of the contingent given back to regular stock (after the end, or returned after it).",
    )
    room_cleared_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the sweep removed the deal's waiting room from Redis (a day after the end).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(sold__gte=0) & Q(held__gte=0), name="deal_counts_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(sold__lte=F("units") - F("held")),
                name="deal_never_more_than_the_contingent",
            ),
            models.CheckConstraint(condition=Q(deal_price__gt=0), name="deal_price_positive"),
            models.CheckConstraint(condition=Q(units__gt=0), name="deal_units_positive"),
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="deal_window_ordered"
            ),
            models.CheckConstraint(
                condition=Q(limit_per_customer__gte=1), name="deal_limit_at_least_one"
            ),
            models.CheckConstraint(
                condition=Q(released_units__lte=F("units") - F("sold") - F("held")),
                name="deal_released_only_what_is_free",
            ),
        ]

    def __str__(self):
        return f"deal {self.pk}"

    @property
    def audit_key(self):
        return self.pk

    @property
    def left(self) -> int:
        """Units nobody has bought or holds, still in the contingent."""
        return max(0, self.units - self.sold - self.held - self.released_units)


class HoldSource(models.TextChoices):
    """Who got a hold: a shopper let in from the queue, or a wait-list entry offered a unit."""

    QUEUE = "queue", "queue"
    WAITLIST = "waitlist", "wait list"


class HoldStatus(models.TextChoices):
    ACTIVE = "active", "active"
    CONVERTED = "converted", "bought"
    EXPIRED = "expired", "expired"
    RELEASED = "released", "released"


class Hold(models.Model):
    """Units reserved for one admitted shopper (from the queue) or one wait-list entry (an
    offer), in their cart at the deal price, until ``expires_at``."""

    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="holds")
    ticket = models.CharField(
        max_length=64, help_text="The queue ticket or wait-list entry that got the hold."
    )
    source = models.CharField(max_length=10, choices=HoldSource.choices, default=HoldSource.QUEUE)
    cart = models.ForeignKey("checkout.Cart", on_delete=models.PROTECT, related_name="+")
    who = models.CharField(
        max_length=300,
        db_column="customer_key",
        help_text="Whose turn got the hold (the ticket's or wait-list entry's owner).",
    )
    quantity = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=HoldStatus.choices, default=HoldStatus.ACTIVE)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    replaced_quantity = models.PositiveIntegerField(
        default=0,
        db_default=0,
        help_text="Units of a regular cart line of the same item that the held line took the place of (the cart says so).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["deal", "ticket"], name="hold_one_per_ticket"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="hold_quantity_positive"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in HoldStatus]), name="hold_status_known"
            ),
        ]
        indexes = [
            models.Index(fields=["deal", "status", "expires_at"]),
            models.Index(fields=["cart", "status"]),
        ]


class HouseholdUsage(models.Model):
    """Units of a deal bought or held by one household key: a customer (``user:``/``email:``),
    a shipping address (``address:`` digest) or a payment (``payment:``). ``max_units`` is the
    deal's limit, copied so the database can hold it."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=300)
    units = models.PositiveIntegerField(default=0)
    max_units = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["deal", "key"], name="household_usage_unique"),
            models.CheckConstraint(
                condition=Q(units__lte=F("max_units")), name="household_within_limit"
            ),
        ]


class Sale(models.Model):
    """Deal units in a placed order (what cancelling the order gives back to the deal)."""

    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="sales")
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="+")
    hold = models.OneToOneField(Hold, on_delete=models.PROTECT, related_name="sale")
    quantity = models.PositiveSmallIntegerField()
    keys = models.JSONField(default=list, help_text="The household keys the units were counted on.")
    returned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()


class WaitlistStatus(models.TextChoices):
    WAITING = "waiting", "waiting"
    OFFERED = "offered", "offered"
    BOUGHT = "bought", "bought"
    LAPSED = "lapsed", "offer lapsed"
    LEFT = "left", "left"


class WaitlistEntry(models.Model):
    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="waitlist")
    who = models.CharField(max_length=300)
    email = models.EmailField()
    language = models.CharField(max_length=8, default="de")
    quantity = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(
        max_length=10, choices=WaitlistStatus.choices, default=WaitlistStatus.WAITING
    )
    token = models.CharField(
        max_length=64, unique=True, help_text="The entry's capability (status link)."
    )
    created_at = models.DateTimeField()
    offered_at = models.DateTimeField(null=True, blank=True)
    order_key = models.BigIntegerField(
        default=0,
        db_default=0,
        help_text=(
            "The place on the wait list: the ticket's place in line for those the line was closed to, the arrival for those "
            "who came to the wait list directly (the waiting room's order keys), so the wait list keeps the order of arrival."
        ),
    )

    class Meta:
        ordering = ["order_key", "id"]
        constraints = [
            models.UniqueConstraint(fields=["deal", "who"], name="waitlist_once_per_person")
        ]
        indexes = [
            models.Index(fields=["deal", "status", "order_key", "id"], name="deals_waitlist_place")
        ]


class Ticket(models.Model):
    """A place in a deal's waiting room (the embedded, database back end; the Redis back end
    keeps the same data in Redis). ``order_key`` is the place in line: drawn at random for
    those who joined before the start (a fair shuffle), 2**52 + a sequence number after."""

    id = models.CharField(primary_key=True, max_length=64)
    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="+")
    who = models.CharField(max_length=300)
    quantity = models.PositiveSmallIntegerField(default=1)
    state = models.CharField(
        max_length=10, choices=TicketState.choices, default=TicketState.WAITING
    )
    order_key = models.BigIntegerField()
    joined_at = models.FloatField()
    data = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["deal", "who"], name="ticket_once_per_person")
        ]
        indexes = [models.Index(fields=["deal", "state", "order_key"])]


class AdmitterLease(models.Model):
    """Who is admitting people into a deal right now (the embedded waiting room's mutex)."""

    deal = models.OneToOneField(Deal, on_delete=models.CASCADE, primary_key=True, related_name="+")
    owner = models.CharField(max_length=64, blank=True)
    until = models.FloatField(default=0.0)
    beat = models.FloatField(
        default=0.0,
        help_text="When the worker's admitter last looked after the deal (epoch seconds).",
    )
