"""Background work of remediation: one task per job run (queue ``default``). The task returns the
job's state; a job interrupted by a crash is resumed by the worker's sweep
(:func:`.services.recover_stalled`), not by django-tasks."""

from __future__ import annotations

from django_tasks import task


@task()
def run_remediation(job_id: int) -> str:
    from .services import run

    return str(run(job_id))
