"""Enqueueing many background tasks at once, inside the caller's transaction.

django-tasks enqueues one task per call (one INSERT each). A remediation queues tens of
thousands (mails, payment actions): :func:`enqueue_many` writes them with one statement per
thousand when the backend is django-tasks-db's database backend, building each row as its
``enqueue`` and its ``pre_save`` handler would (bulk inserts send no signals), and falls back to
one ``enqueue`` per task with any other backend. The task ids are chosen by the caller, so rows
that name their task (an outbox message) are written with it.
"""

from __future__ import annotations

import uuid


def enqueue_many(task, calls: list[tuple[list, str]]) -> dict[str, str]:
    """Enqueue ``task(*args)`` for each ``(args, chosen_task_id)``. Returns ``{chosen: actual}``
    for the tasks whose backend gave them another id (only non-database backends)."""
    from django_tasks_db.backend import DatabaseBackend

    backend = task.get_backend()
    if not isinstance(backend, DatabaseBackend):
        moved = {}
        for args, chosen in calls:
            got = str(task.enqueue(*args).id)
            if got != chosen:
                moved[chosen] = got
        return moved
    from django_tasks_db.compat import normalize_json
    from django_tasks_db.models import DBTaskResult, get_date_max

    backend.validate_task(task)
    DBTaskResult.objects.bulk_create(
        [
            DBTaskResult(
                id=uuid.UUID(chosen),
                args_kwargs=normalize_json({"args": list(args), "kwargs": {}}),
                priority=task.priority,
                task_path=task.module_path,
                queue_name=task.queue_name,
                run_after=task.run_after or get_date_max(),
                backend_name=backend.alias,
            )
            for args, chosen in calls
        ],
        batch_size=1000,
    )
    return {}
