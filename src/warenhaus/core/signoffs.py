"""Four eyes held by the database: whoever made or edited a thing cannot approve it.

Each thing that needs a second person (a campaign; a price change to come) has a table of the
people who took part in it: a concrete :class:`~warenhaus.core.models.Signoff` with a foreign key
``subject`` to the thing and one row per person and thing (a unique constraint).

1. The author's row is written with the thing, each editor's in the transaction of the edit
   (:func:`take_part`: an insert that does nothing when the person has a row already).
2. Approving inserts the approver's row (:func:`sign_approval`). The insert fails on the unique
   constraint if that person made or edited the thing, whatever a service checked before it.
3. The thing's own row names the approval by that row's ``key`` (a foreign key, ``approval``),
   and :func:`approval_constraint` ties the key to ``approved_by``: a thing cannot be marked
   approved by someone who has no approver row, so a direct UPDATE cannot go around the table.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import IntegrityError, models, transaction
from django.db.models.functions import Concat

from .errors import DomainError
from .models import SignoffRole


def signoff_key(subject_id, user_id, role: str) -> str:
    """What the check constraint of the table computes from the row's columns."""
    return f"{subject_id}:{user_id}:{role}"


def take_part(model, *, subject, user, role: str = SignoffRole.EDITOR) -> None:
    """Record that ``user`` made (``author``) or edited (``editor``) ``subject``, inside the
    caller's transaction. A person keeps their first part: an author who edits stays the author.
    Without a person (the system) nothing is recorded."""
    if not getattr(user, "pk", None):
        return
    row = model(subject=subject, user=user, role=role, key=signoff_key(subject.pk, user.pk, role))
    model.objects.bulk_create([row], ignore_conflicts=True)


def part_of(model, *, subject, user) -> str:
    """The part ``user`` took in ``subject`` (a :class:`SignoffRole`), or ``""``."""
    return (
        model.objects.filter(subject=subject, user=user).values_list("role", flat=True).first()
        or ""
    )


def parts(model, *, subject) -> list:
    """Everyone who took part in ``subject``, in order."""
    return list(model.objects.filter(subject=subject).select_related("user").order_by("at", "pk"))


def sign_approval(model, *, subject, user, refuse: Callable[[str], DomainError]) -> str:
    """Insert ``user``'s approver row for ``subject`` (inside the caller's transaction, which
    should hold the subject's row lock) and return its key for the subject's ``approval``.
    ``refuse(part)`` makes the error raised when ``user`` made or edited it: checked first for a
    precise answer, and held by the unique constraint when two requests race."""
    took = part_of(model, subject=subject, user=user)
    if took:
        raise refuse(took)
    key = signoff_key(subject.pk, user.pk, SignoffRole.APPROVER)
    try:
        with transaction.atomic():
            model.objects.create(subject=subject, user=user, role=SignoffRole.APPROVER, key=key)
    except IntegrityError:
        raise refuse(part_of(model, subject=subject, user=user)) from None
    return key


def approval_constraint(
    *, name: str, approved_by: str = "approved_by", approval: str = "approval"
) -> models.CheckConstraint:
    """For the approvable thing's model: without an approver there is no approval; with one,
    ``approval`` is exactly that person's approver row of this thing. Each column is named NOT
    NULL where it matters: a check whose condition is NULL passes."""
    key = Concat(
        "id",
        models.Value(":"),
        f"{approved_by}_id",
        models.Value(":"),
        models.Value(SignoffRole.APPROVER.value),
        output_field=models.CharField(),
    )
    return models.CheckConstraint(
        condition=models.Q(**{f"{approved_by}__isnull": True, f"{approval}__isnull": True})
        | models.Q(
            **{f"{approved_by}__isnull": False, f"{approval}__isnull": False, f"{approval}_id": key}
        ),
        name=name,
    )
