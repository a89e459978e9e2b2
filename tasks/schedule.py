"""Periodic background jobs, declared as data and registered with `rq cron`.

`flask serve` runs `rq cron tasks.schedule`; in production run the same
command once next to the workers.
"""
from __future__ import annotations

from rq import cron

# (dotted function, interval in seconds, queue)
SCHEDULES: list[tuple[str, int, str]] = []


def _resolve(dotted: str):
    module_name, _, attribute = dotted.rpartition(".")
    module = __import__(module_name, fromlist=[attribute])
    return getattr(module, attribute)


for dotted, interval, queue in SCHEDULES:
    cron.register(_resolve(dotted), queue_name=queue, interval=interval)
