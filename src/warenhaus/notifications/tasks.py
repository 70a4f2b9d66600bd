"""Background delivery of outbox messages (run by ``warenhaus worker``)."""

from django_tasks import task

from . import services


@task(queue_name="mail")
def deliver_message(message_id: int) -> str:
    return services.deliver(message_id)
