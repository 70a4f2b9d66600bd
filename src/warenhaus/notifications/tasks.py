"""Background delivery of outbox messages (run by ``warenhaus worker``, queue ``mail``).

The task never raises for a failed send: retries, backoff and giving up are the outbox's
business (:func:`warenhaus.notifications.services.deliver`), recorded on the message, and each
retry is a new task scheduled with ``run_after``. The return value is the message's status.
"""

from django_tasks import task

from . import services


@task(queue_name="mail")
def deliver_message(message_id: int) -> str:
    return services.deliver(message_id)
