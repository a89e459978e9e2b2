"""RQ background jobs that recompute skill levels: thin and idempotent, like
tasks.jobs. Each takes ids, calls one service in an app context, and lets
exceptions through so RQ can retry."""
from __future__ import annotations

from .jobs import app


def recompute_micro_task_levels(micro_task_id: int) -> dict[str, int]:
    """After a micro-task is scored: the levels of its annotators."""
    from annotate.services import skills

    with app().app_context():
        return skills.recompute_micro_task(micro_task_id)


def recompute_project_levels(project_id: int) -> dict[str, int]:
    """After a project's skills change or its scores are re-estimated: the levels of everyone who worked on it."""
    from annotate.services import skills

    with app().app_context():
        return skills.recompute_levels(project_id=project_id)


def recompute_all_levels() -> dict[str, int]:
    from annotate.services import skills

    with app().app_context():
        return skills.recompute_levels()
