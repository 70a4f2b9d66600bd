"""The registry of periodic work: the apps register their sweeps, the worker runs them all."""

from __future__ import annotations

from datetime import timedelta

import pytest

from warenhaus.core import periodic
from warenhaus.ops.management.commands import wh_worker


def test_every_app_registers_its_periodic_work_under_the_workers_options():
    by_option = {s.option: [job.name for job in s.jobs] for s in periodic.schedules()}
    assert by_option == {
        "requeue": ["outbox maintenance", "remediation recovery"],
        "monitor": ["voucher leak monitors"],
        "deals": ["flash-deal sweep"],
    }
    seconds = {s.option: s.seconds for s in periodic.schedules()}
    assert seconds == {"requeue": 30, "monitor": 15, "deals": 1}


def test_the_worker_module_names_no_domain():
    source = open(wh_worker.__file__).read()
    for app in ("notifications", "remediation", "promotions", "deals"):
        assert f"warenhaus.{app}" not in source


@pytest.fixture
def scratch_registry(monkeypatch):
    monkeypatch.setattr(periodic, "_schedules", {})
    monkeypatch.setattr(wh_worker, "close_old_connections", lambda: None)
    return periodic


def test_jobs_of_one_option_run_in_registration_order_and_a_failure_spares_the_others(
    scratch_registry, caplog
):
    ran = []

    def broken():
        ran.append("broken")
        raise RuntimeError("database away")

    scratch_registry.register("first", every=timedelta(seconds=5), func=broken, option="x")
    scratch_registry.register(
        "second", every=timedelta(seconds=5), func=lambda: ran.append("second") or 3, option="x"
    )
    (schedule,) = scratch_registry.schedules()
    assert wh_worker.run_schedule(schedule) == 3
    assert ran == ["broken", "second"]
    assert "first failed" in caplog.text


def test_an_option_keeps_one_interval(scratch_registry):
    scratch_registry.register("a", every=timedelta(seconds=5), func=lambda: 0, option="x")
    with pytest.raises(ValueError):
        scratch_registry.register("b", every=timedelta(seconds=6), func=lambda: 0, option="x")
    scratch_registry.register("a", every=timedelta(seconds=5), func=lambda: 1, option="x")
    assert [job.func() for job in scratch_registry.schedules()[0].jobs] == [1]
