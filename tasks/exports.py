"""RQ background jobs for exports: thin and idempotent, like `tasks.jobs`."""
from __future__ import annotations

from tasks.jobs import app


def run_export(job_id: int) -> None:
    from annotate.services import exports

    with app().app_context():
        exports.run_export(job_id)


def expire_exports() -> int:
    """Periodic: remove the files of exports past EXPORT_TTL_SECONDS."""
    from annotate.services import exports

    with app().app_context():
        return exports.expire_exports()
