"""RQ background jobs: thin and idempotent. Each takes ids, loads, calls one
service inside an app context, and lets exceptions through so RQ can retry."""
from __future__ import annotations

from flask import Flask, current_app, has_app_context

_app: Flask | None = None


def app() -> Flask:
    """The app to run in: the caller's (tests run jobs in-process), else one per worker."""
    global _app
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]
    if _app is None:
        from annotate import create_app

        _app = create_app()
    return _app


def run_import(job_id: int) -> None:
    from annotate.services import ingest

    with app().app_context():
        ingest.run_import(job_id)


def store_import_images(job_id: int, attempt: str, chunk: int) -> None:
    """One chunk of a large image upload; several run side by side on as many workers."""
    from annotate.services import ingest

    with app().app_context():
        ingest.store_import_images(job_id, attempt, chunk)


def finish_import(job_id: int, attempt: str) -> None:
    from annotate.services import ingest

    with app().app_context():
        ingest.finish_import(job_id, attempt)


def split_project(job_id: int) -> None:
    from annotate.services import assist, work

    with app().app_context():
        project_id = work.split_project(job_id)
        assist.after_split(project_id)


def reclaim_expired_leases() -> int:
    from annotate.services import work

    with app().app_context():
        return work.reclaim_expired()


def score_micro_task(micro_task_id: int) -> None:
    with app().app_context():
        _score(micro_task_id)


def _score(micro_task_id: int) -> None:
    from annotate.queue import enqueue
    from annotate.services import assist, scoring, work

    scoring.score_micro_task(micro_task_id)
    work.apply_dynamic_overlap(micro_task_id)
    work.refresh_matching(micro_task_id)  # the project's rate and its annotators' pace, for matching
    assist.after_scoring(micro_task_id)
    enqueue("tasks.skills.recompute_micro_task_levels", micro_task_id, job_id=f"skills-{micro_task_id}")


SCORE_BATCH = 50  # micro-tasks a scoring job takes out of the inbox at a time


def score_finished() -> int:
    """Score the micro-tasks that submits finished, from dispatch's scoring inbox, until it is
    empty: one job for many micro-tasks, where a job each would cost the hot path and the
    workers more than the scoring. While a backlog is left after its first batch, it queues
    one more of itself, so a backlog spreads over idle workers. A micro-task whose scoring
    fails gets a background job of its own (`score_micro_task`), which RQ retries and the
    console lists. Returns how many it scored."""
    import logging
    import uuid

    from annotate.queue import enqueue
    from annotate.services import work

    with app().app_context():
        d = work.dispatcher()
        scored, helped = 0, False
        while True:
            batch = d.take_finished(SCORE_BATCH)
            if not batch:
                if d.end_drain():
                    continue
                return scored
            if not helped and d.finished_waiting():
                helped = True
                enqueue("tasks.jobs.score_finished", job_id=f"score-finished-{uuid.uuid4().hex}")
            for micro_task_id in batch:
                try:
                    _score(micro_task_id)
                    scored += 1
                except Exception:
                    logging.getLogger(__name__).exception("scoring micro-task %s failed; it gets a job of its own",
                                                          micro_task_id)
                    from annotate.extensions import db

                    db.session.rollback()
                    enqueue("tasks.jobs.score_micro_task", micro_task_id, job_id=f"score-{micro_task_id}")


def reestimate_project(project_id: int) -> None:
    from annotate.queue import enqueue
    from annotate.services import scoring

    with app().app_context():
        scoring.reestimate_project(project_id)
        # New quality estimates are new evidence for the skills the project uses.
        enqueue("tasks.skills.recompute_project_levels", project_id, job_id=f"skills-project-{project_id}")


def reestimate_live_projects() -> int:
    """Dawid-Skene over every live project's answers, one background job each."""
    from annotate.queue import enqueue
    from annotate.services import scoring, work

    with app().app_context():
        work.refresh_matching()  # every live project's rate and every annotator's pace
        project_ids = scoring.live_project_ids()
        for project_id in project_ids:
            enqueue("tasks.jobs.reestimate_project", project_id, job_id=f"reestimate-{project_id}")
        return len(project_ids)


def approve_overdue() -> int:
    from annotate.services import reviews

    with app().app_context():
        return reviews.approve_overdue()


def fair_pay_top_ups() -> int:
    from annotate.services import pay, scoring

    with app().app_context():
        return sum(pay.fair_pay_top_ups(project_id)["entries"] for project_id in scoring.live_project_ids())


# RQ callbacks (annotate.queue.enqueue sets them on every background job). They must not raise:
# RQ would record the callback's error in place of the job's.


def record_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """A failed attempt goes into SQL (background_job), where the console lists and retries it."""
    import logging

    from annotate.services import console

    try:
        with app().app_context():
            console.record_job_failure(job.id, job.func_name, list(job.args), f"{exc_type.__name__}: {exc_value}")
    except Exception:
        logging.getLogger(__name__).exception("could not record the failure of background job %s (%s)",
                                              job.id, job.func_name)


def record_success(job, connection, result) -> None:
    """A run that succeeded after a recorded failure (RQ's own retry or the console's) clears it."""
    import logging

    from annotate.services import console

    try:
        with app().app_context():
            console.record_job_success(job.id)
    except Exception:
        logging.getLogger(__name__).exception("could not record the success of background job %s (%s)",
                                              job.id, job.func_name)
