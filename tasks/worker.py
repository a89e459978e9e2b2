"""The RQ worker that `serve` runs: it builds the app once, before forking.

RQ forks a work horse for every job. With the stock worker each horse imported
the services and built the app again, about 3 s of CPU per job, and the
platform queues a scoring job for every finished micro-task. Built in the
parent, the app is inherited by every horse. Only the database pool must not
cross the fork (two processes on one socket), so each horse starts with an
empty one; redis-py notices the fork and does the same for its own.

The app's objects (about 200,000 that the garbage collector tracks, most of
them from the libraries it imports) are then frozen out of the collector's
reach: a horse that allocates a lot, such as an import of 100,000 items,
would otherwise walk all of them in every full collection (a tenth of that
import's CPU time), and would copy the pages it touches out of the memory it
shares with the worker.
"""
from __future__ import annotations

import gc
import importlib
import os
import time
from typing import Any

from rq import Worker
from sqlalchemy.orm import configure_mappers

from . import jobs

# What the jobs import when they run: loaded here, they cost nothing per job.
# (scikit-learn stays lazy: only model-assisted projects need it.)
_SERVICES = ("assist", "exports", "ingest", "mlbackends", "payroll", "scoring", "skills", "uncertainty", "work")


class PreloadedWorker(Worker):
    """`rq worker --worker-class tasks.worker.PreloadedWorker`."""

    def work(self, *args: Any, **kwargs: Any) -> bool:
        seconds = preload()
        self.log.info("Built the app once in %.1f s; every job runs in a fork of it.", seconds)
        return super().work(*args, **kwargs)


def preload() -> float:
    """Build the app and import the services; return the seconds it took."""
    started = time.monotonic()
    app = jobs.app()
    with app.app_context():
        from annotate.extensions import db

        for name in _SERVICES:
            importlib.import_module(f"annotate.services.{name}")
        # SQLAlchemy sets up the models' mappers on their first query: done
        # here, once, instead of in every horse (a tenth of an image chunk's CPU).
        configure_mappers()
        engine = db.engine
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    gc.collect()
    gc.freeze()  # as the gc module's documentation advises before forking
    return time.monotonic() - started
