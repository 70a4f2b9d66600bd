"""Stock per variant. The database, not Python, guarantees that allocations never exceed what
is on hand: the check constraints below make an oversell impossible even for code that forgets
the conditional update in :mod:`warenhaus.inventory.services`."""

from django.db import models
from django.db.models import F, Q


class Stock(models.Model):
    variant = models.OneToOneField(
        "catalog.Variant", on_delete=models.CASCADE, related_name="stock", primary_key=True
    )
    on_hand = models.IntegerField(default=0, help_text="Units physically in the warehouse.")
    allocated = models.IntegerField(
        default=0, help_text="Units promised to placed orders that have not shipped."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_not_negative"),
            models.CheckConstraint(
                condition=Q(allocated__gte=0), name="stock_allocated_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(allocated__lte=F("on_hand")), name="stock_no_oversell"
            ),
        ]

    @property
    def available(self) -> int:
        return max(0, self.on_hand - self.allocated)
