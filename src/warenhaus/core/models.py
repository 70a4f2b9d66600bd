"""Tables the whole shop shares: the audit trail, remembered idempotent responses, rate counters,
and the abstract table of who took part in something that needs four eyes."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Concat


class AuditSource(models.TextChoices):
    """Where an audited action came from."""

    API = "api", "api"
    CONSOLE = "console", "console"
    CLI = "cli", "cli"
    SYSTEM = "system", "system"  # the shop itself: a monitor, the worker
    DEMO = "demo", "demo"  # the demo's data being made
    REMEDIATION = "remediation", "remediation"  # a remediation job acting on an order


class AuditEntry(models.Model):
    """One staff or seller action: who, what, before, after, why. Written in the action's
    transaction; never updated (the console shows it read-only and the model refuses saves of
    existing rows)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_email = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=80, db_index=True)
    object_type = models.CharField(max_length=60, db_index=True)
    object_id = models.CharField(max_length=120, db_index=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    source = models.CharField(max_length=20, choices=AuditSource.choices, default=AuditSource.API)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise RuntimeError("audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuntimeError("audit entries are append-only")


class IdempotencyRecord(models.Model):
    """The first response to a request made with an ``Idempotency-Key``.

    The row is inserted in the same transaction as the work it guards, so a crash leaves neither
    and a retry starts afresh; the unique constraint makes a concurrent duplicate wait for the
    first and then replay its answer.
    """

    scope = models.CharField(max_length=200)
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_scope_key_unique")
        ]


class RateCounter(models.Model):
    """One fixed window of one rate limit (see :mod:`warenhaus.core.ratelimit`)."""

    bucket = models.CharField(max_length=100, unique=True)
    window_start = models.BigIntegerField(db_index=True)
    count = models.PositiveIntegerField(default=0)


class SignoffRole(models.TextChoices):
    AUTHOR = "author", "made it"
    EDITOR = "editor", "edited it"
    APPROVER = "approver", "approved it"


class Signoff(models.Model):
    """Abstract: one person's part in one thing that needs four eyes (see
    :mod:`warenhaus.core.signoffs`). A concrete table adds ``subject``, the foreign key to the
    thing; one row per person and thing, so an approver's row cannot join an author's or an
    editor's. ``key`` is ``<subject id>:<user id>:<role>``, held by a check constraint, so that
    the thing's approval can name its approver's row by a foreign key."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=10, choices=SignoffRole.choices)
    key = models.CharField(max_length=64, unique=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "user"], name="%(app_label)s_%(class)s_one_part_per_person"
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=[r.value for r in SignoffRole]),
                name="%(app_label)s_%(class)s_role_known",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    key=Concat(
                        "subject_id",
                        models.Value(":"),
                        "user_id",
                        models.Value(":"),
                        "role",
                        output_field=models.CharField(),
                    )
                ),
                name="%(app_label)s_%(class)s_key_names_its_row",
            ),
        ]
