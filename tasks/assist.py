"""Model-assistance jobs: training, predicting, re-forming the queue, and the ML backend calls."""
from __future__ import annotations

from tasks.jobs import app


def train_builtin(project_id: int, force: bool = False) -> dict:
    """A new built-in model when due (or forced), its predictions, then the queue's new order."""
    from annotate.services import assist, uncertainty

    with app().app_context():
        summary = assist.train_builtin(project_id, force=force)
        if summary.get("trained"):
            summary["reformed"] = uncertainty.reform_head(project_id)
        return summary


def refresh_project(project_id: int) -> dict:
    """New items get predictions from the project's source; the queue follows."""
    from annotate.services import assist, mlbackends, uncertainty

    with app().app_context():
        source = assist.source_of(project_id)
        summary = mlbackends.predict_open_items(project_id) if source == "backend" else assist.refresh(project_id)
        summary["reformed"] = uncertainty.reform_head(project_id)
        return summary


def reform_queue(project_id: int) -> dict:
    from annotate.services import uncertainty

    with app().app_context():
        return uncertainty.reform_head(project_id)


def backend_notify(project_id: int, micro_task_id: int) -> int:
    """ANNOTATION_CREATED to the ML backend for each new consensus label of a micro-task."""
    from annotate.services import mlbackends

    with app().app_context():
        return mlbackends.notify_consensus(project_id, micro_task_id)


def backend_train(project_id: int) -> dict:
    """START_TRAINING to the project's ML backend, then fresh predictions."""
    from annotate.services import mlbackends

    with app().app_context():
        return mlbackends.start_training(project_id)


def refresh_assisted_projects() -> int:
    """Every live assisted project: backends predict what is new, built-in models retrain when due."""
    from annotate.queue import enqueue
    from annotate.services import mlbackends

    with app().app_context():
        due = mlbackends.assisted_live_projects()
    for project_id, _source in due:
        enqueue("tasks.assist.refresh_project", project_id, job_id=f"assist-refresh-{project_id}")
    return len(due)
