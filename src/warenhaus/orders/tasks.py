"""Background work of orders: carrying out payment actions (voids, refunds) after the
transaction that decided them committed (queue ``default``)."""

from __future__ import annotations

from django_tasks import task


@task()
def run_payment_action(action_id: int) -> str:
    from .services import carry_out_payment_action

    return carry_out_payment_action(action_id)
