"""The periodic background jobs are declared as data and each names a real job."""
from __future__ import annotations

import importlib


def test_every_scheduled_job_exists_and_runs_in_the_app(app, run_jobs):
    schedule = importlib.import_module("tasks.schedule")
    assert {name for name, _interval, _queue in schedule.SCHEDULES} >= {
        "tasks.jobs.reclaim_expired_leases", "tasks.jobs.approve_overdue"}
    for dotted, interval, queue in schedule.SCHEDULES:
        module, _, name = dotted.rpartition(".")
        job = getattr(importlib.import_module(module), name)
        assert callable(job) and interval >= 30 and queue == "default"
        with app.app_context():
            assert job() == 0  # nothing to do on an empty platform, and no error
