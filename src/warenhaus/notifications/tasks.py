"""Background delivery of outbox messages (run by ``warenhaus worker``, queue ``mail``).

The task never raises for a failed send: retries, backoff and giving up are the outbox's
business (:func:`warenhaus.notifications.services.deliver`), recorded on the message, and each
retry is a new task scheduled with ``run_after``. The return value is the message's status.

The outbox chooses a delivery task's id before it writes the message, so that the message row is
inserted with its ``task_id`` and needs no second write. :func:`enqueue_delivery` hands the
chosen id to django-tasks' database backend through :func:`use_chosen_id`, a ``pre_save``
receiver for its task rows (connected in :mod:`.apps`); with any other backend the task keeps the
id the backend gave it and the caller is told so.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar

from django_tasks import task

from . import services

_chosen_id: ContextVar[uuid.UUID | None] = ContextVar("outbox_chosen_task_id", default=None)


@task(queue_name="mail")
def deliver_message(message_id: int) -> str:
    return services.deliver(message_id)


def new_task_id() -> uuid.UUID:
    return uuid.uuid4()


def enqueue_delivery(message_id: int, *, task_id: uuid.UUID, run_after=None) -> str:
    """Enqueue ``deliver_message(message_id)``, under ``task_id`` if the backend lets us choose.
    Returns the id the task got. Call inside the transaction that writes the message."""
    queued = deliver_message.using(run_after=run_after) if run_after else deliver_message
    token = _chosen_id.set(task_id)
    try:
        result = queued.enqueue(message_id)
    finally:
        _chosen_id.reset(token)
    return str(result.id)


def enqueue_deliveries(pairs: list[tuple[int, str]]) -> None:
    """``deliver_message`` for many ``(message_id, task_id)`` at once, inside the caller's
    transaction (:func:`warenhaus.core.taskqueue.enqueue_many`); a backend that names its tasks
    itself has the messages told the ids their tasks got."""
    from warenhaus.core.taskqueue import enqueue_many

    from .models import OutboxMessage

    moved = enqueue_many(
        deliver_message, [([message_id], task_id) for message_id, task_id in pairs]
    )
    by_task = {task_id: message_id for message_id, task_id in pairs}
    for chosen, got in moved.items():
        OutboxMessage.objects.filter(pk=by_task[chosen]).update(task_id=got)


def use_chosen_id(sender, instance, raw=False, **kwargs) -> None:
    """``pre_save`` of django-tasks-db's task row: give a new delivery task the id
    :func:`enqueue_delivery` chose."""
    chosen = _chosen_id.get()
    if (
        chosen is None
        or raw
        or not instance._state.adding
        or instance.task_path != deliver_message.module_path
    ):
        return
    instance.id = chosen
    _chosen_id.set(None)  # one task per call
