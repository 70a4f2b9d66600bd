"""The registry of periodic work: sweeps, monitors and maintenance that ``warenhaus worker`` runs.

Each app registers its jobs in its ``AppConfig.ready()``; the worker knows none of them by name.
Jobs that share an ``option`` run one after the other in one thread of the worker, every
``--<option>-interval`` seconds (environment variable ``env``; 0 turns them off).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class Job:
    """One piece of periodic work: ``func()`` returns how many things it did."""

    name: str
    func: Callable[[], int]


@dataclass
class Schedule:
    """Jobs that run together, in registration order, every ``every`` (one worker option)."""

    option: str
    every: timedelta
    env: str | None = None
    help: str = ""
    jobs: list[Job] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.every.total_seconds()


_schedules: dict[str, Schedule] = {}


def register(
    name: str,
    *,
    every: timedelta,
    func: Callable[[], int],
    option: str | None = None,
    env: str | None = None,
    help: str = "",
) -> None:
    """Run ``func`` every ``every`` in the worker. ``option`` names the worker's interval option
    (``--<option>-interval``, default ``name``); jobs registered under the same option share its
    interval, which the first registration sets. Registering a name twice replaces the job."""
    option = option or name
    schedule = _schedules.get(option)
    if schedule is None:
        schedule = _schedules[option] = Schedule(option=option, every=every, env=env, help=help)
    elif schedule.every != every or (env and schedule.env and env != schedule.env):
        raise ValueError(f"periodic job {name!r}: option {option!r} has another interval or env")
    schedule.jobs[:] = [job for job in schedule.jobs if job.name != name]
    schedule.jobs.append(Job(name=name, func=func))


def schedules() -> list[Schedule]:
    """Every registered schedule, in the order the first job of each was registered."""
    return list(_schedules.values())
