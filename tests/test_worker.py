"""The worker `serve` runs builds the app once and runs each job in a fork of it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rq import Queue

REPO = Path(__file__).resolve().parent.parent


def test_preloaded_worker_runs_jobs_that_use_the_database_in_forks(app, redis_url, tmp_path):
    from annotate.extensions import redis

    with app.app_context():
        queue = Queue("worker-test", connection=redis.client)
        jobs = [queue.enqueue("tasks.jobs.reclaim_expired_leases") for _ in range(3)]
    env = {**os.environ, "DATABASE_URL": app.config["DATABASE_URL"], "REDIS_URL": redis_url,
           "INSTANCE_PATH": str(tmp_path / "worker"), "SECRET_KEY": "worker test", "PYTHONPATH": str(REPO)}
    done = subprocess.run([str(Path(sys.executable).parent / "rq"), "worker", "--burst", "--url", redis_url,
                           "--worker-class", "tasks.worker.PreloadedWorker", "--path", str(REPO), "worker-test"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # One build for three jobs, each of which opened its own database connection after the fork.
    assert output.count("Built the app once") == 1, output
    for job in jobs:
        assert job.get_status(refresh=True) == "finished", output
        assert job.return_value() == 0
