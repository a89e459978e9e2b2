"""Putting background jobs on the RQ queue.

Services enqueue by dotted name (`tasks.jobs.run_import`), so the domain does
not import the queue side; and they enqueue only after the commit the job reads.
"""
from __future__ import annotations

from typing import Any

from rq import Callback, Queue, Retry

from .extensions import redis

DEFAULT_QUEUE = "default"


def queue(name: str = DEFAULT_QUEUE) -> Queue:
    return Queue(name, connection=redis.client)


def enqueue(func: str, *args: Any, job_id: str | None = None, timeout: int = 3600, retries: int = 3) -> str:
    """Enqueue `func(*args)`; every background job is idempotent, so RQ may retry it."""
    job = queue().enqueue(func, *args, job_id=job_id, job_timeout=timeout,
                          retry=Retry(max=retries, interval=[5, 30, 120]) if retries else None,
                          # A failure is recorded in SQL (background_job), where the console retries it from.
                          on_failure=Callback("tasks.jobs.record_failure"),
                          on_success=Callback("tasks.jobs.record_success"))
    return job.id
