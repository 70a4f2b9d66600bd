"""Background work of promotions: the leak-monitor sweep as a django-tasks task (the worker also
runs the sweep on its own every ``--monitor-interval`` seconds)."""

from __future__ import annotations

from django_tasks import task


@task()
def run_monitors_task() -> int:
    """Sweep all approved campaigns; returns how many alerts were written."""
    from .services import run_monitors

    return len(run_monitors())
