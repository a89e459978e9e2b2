"""Periodic background jobs, declared as data and registered with `rq cron`.

`flask serve` runs `rq cron tasks.schedule`; in production run the same
command once next to the workers.
"""
from __future__ import annotations

from rq import cron

# (dotted function, interval in seconds, queue)
SCHEDULES: list[tuple[str, int, str]] = [
    # Leases that ran out give their slot back (the request path also checks).
    ("tasks.jobs.reclaim_expired_leases", 30, "default"),
    # Dawid-Skene over each live project's answers; updates consensus, quality and pending decisions.
    ("tasks.jobs.reestimate_live_projects", 600, "default"),
    # Work nobody reviewed within the project's window is approved and paid.
    ("tasks.jobs.approve_overdue", 600, "default"),
    # Projects whose measured hourly pay fell below the floor top everyone up.
    ("tasks.jobs.fair_pay_top_ups", 3600, "default"),
    # Assisted projects: ML backends predict new items, built-in models retrain when due.
    ("tasks.assist.refresh_assisted_projects", 120, "default"),
    # Export files past EXPORT_TTL_SECONDS are removed.
    ("tasks.exports.expire_exports", 3600, "default"),
]


def _resolve(dotted: str):
    module_name, _, attribute = dotted.rpartition(".")
    module = __import__(module_name, fromlist=[attribute])
    return getattr(module, attribute)


for dotted, interval, queue in SCHEDULES:
    cron.register(_resolve(dotted), queue_name=queue, interval=interval)
