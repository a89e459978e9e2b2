"""Re-estimation benchmark: `scoring.reestimate_project` on a project with
1,000,000 single-choice answers (100 annotators, 5 classes), through the
service, as the scheduled background job runs it.

    .venv/bin/python bench/reestimate.py                       # SQLite in a temporary folder
    .venv/bin/python bench/reestimate.py --database postgresql+psycopg://postgres@127.0.0.1/bench_reestimate
    .venv/bin/python bench/reestimate.py --answers 100000

The project is built with set-based SQL (items, finished micro-tasks of 10
items, 5 submitted and approved assignments each, one annotation per item
and assignment), not through the API. Each item has a planted true class;
annotator w answers it right with probability 0.50 + (37 w mod 45) / 100
(0.50 to 0.94) and otherwise gives one of the four other classes at random.
The database given is emptied first.

Prints the wall and CPU time of the re-estimation, the peak memory (VmHWM,
reset just before it began) of the process that ran it and its resident
size when it began, and the accuracy of the consensus it wrote against the planted
classes. The re-estimation runs twice: the second run finds every score in
place (the scheduled case), so its time is what a periodic run costs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memory import memory_mib, reset_peak  # noqa: E402  (bench/ is on the path when run as a script)
from people import fresh_schema_with_people  # noqa: E402

CLASSES = ["A", "B", "C", "D", "E"]
CONFIG = ("<View><Text name=\"text\" value=\"$text\"/><Choices name=\"label\" toName=\"text\" choice=\"single\">"
          + "".join(f'<Choice value="{c}"/>' for c in CLASSES) + "</Choices></View>")
ANNOTATORS = 100
PER_TASK = 10


def make_app(database: str, folder: Path):
    from annotate import create_app

    return create_app({"TESTING": False, "INSTANCE_PATH": str(folder), "DATABASE_URL": database,
                       "FAST_PASSWORD_HASH": True}, check_services=False)


def _result(label: str) -> str:
    return json.dumps([{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}],
                      separators=(",", ": "))  # ": " so that text() reads no bound parameter


def build(database: str, folder: Path, answers: int, overlap: int) -> tuple[int, int]:
    """A finished project with `answers` answers; returns (project id, answers in SQL)."""
    from sqlalchemy import text

    from annotate.extensions import db
    from annotate.services import projects

    app = make_app(database, folder)
    with app.app_context():
        requester, team, first = fresh_schema_with_people(ANNOTATORS)
        project = projects.create_project(requester, team, {
            "title": "bench reestimate", "label_config": CONFIG, "overlap": overlap, "max_overlap": overlap,
            "items_per_micro_task": PER_TASK})
        items = -(-answers // overlap)
        tasks = -(-items // PER_TASK)
        pg = db.engine.dialect.name == "postgresql"
        now = "now()" if pg else "strftime('%Y-%m-%d %H:%M:%f', 'now')"
        series = ("generate_series(1, :n) AS s(n)" if pg else
                  "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :n) SELECT n FROM s) AS s")
        slots = ("generate_series(0, :k - 1) AS slot(n)" if pg else
                 "(WITH RECURSIVE slot(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM slot WHERE n < :k - 1) "
                 "SELECT n FROM slot) AS slot")
        build_object = "jsonb_build_object" if pg else "json_object"
        rand100 = "floor(random() * 100)::int" if pg else "(abs(random()) % 100)"
        rand4 = "floor(random() * 4)::int" if pg else "(abs(random()) % 4)"
        truth = "((mti.item_id * 7) % 5)"
        w = "(a.annotator_id - :first)"
        given = (f"(CASE WHEN {rand100} < 50 + ({w} * 37) % 45 THEN {truth} "
                 f"ELSE ({truth} + 1 + {rand4}) % 5 END)")
        cast = "::jsonb" if pg else ""
        result = "(CASE " + given + " " + " ".join(
            f"WHEN {i} THEN '{_result(c)}'" for i, c in enumerate(CLASSES)) + " END)"
        statements = [
            (f"INSERT INTO item (project_id, data, content_hash, is_gold, created_at) "
             f"SELECT :p, {build_object}('text', 'item ' || n), n, false, {now} FROM {series}", {"n": items}),
            (f"INSERT INTO micro_task (project_id, seq, is_qualification, overlap, status, taken, submitted, "
             f"created_at, done_at) SELECT :p, n, false, :k, 'done', :k, :k, {now}, {now} FROM {series}",
             {"n": tasks, "k": overlap}),
            ("ANALYZE", {}),
            ("INSERT INTO micro_task_item (micro_task_id, position, item_id) "
             "SELECT mt.id, (it.content_hash - 1) % :per, it.id FROM item it JOIN micro_task mt "
             "ON mt.project_id = :p AND mt.seq = (it.content_hash - 1) / :per + 1 WHERE it.project_id = :p",
             {"per": PER_TASK}),
            # k distinct annotators per micro-task: consecutive ones from a place that moves with the seq.
            (f"INSERT INTO assignment (micro_task_id, annotator_id, project_id, status, leased_at, "
             f"lease_expires_at, submitted_at, ended_at, active_seconds, with_predictions, decision) "
             f"SELECT mt.id, :first + (mt.seq * 7 + slot.n) % :people, :p, 'submitted', {now}, {now}, {now}, "
             f"{now}, 35.0, false, 'approved' FROM micro_task mt CROSS JOIN {slots} WHERE mt.project_id = :p",
             {"people": ANNOTATORS, "k": overlap}),
            ("ANALYZE", {}),
            (f"INSERT INTO annotation (assignment_id, item_id, result, seconds, had_prediction, "
             f"accepted_prediction, created_at) SELECT a.id, mti.item_id, {result}{cast}, 3.5, false, false, {now} "
             f"FROM assignment a JOIN micro_task_item mti ON mti.micro_task_id = a.micro_task_id "
             f"WHERE a.project_id = :p", {}),
            ("ANALYZE", {}),
        ]
        started = time.perf_counter()
        with db.engine.begin() as connection:
            for sql, params in statements:
                connection.execute(text(sql), {"p": project, "first": first, **params})
        with db.engine.begin() as connection:
            count = connection.execute(text("SELECT count(*) FROM annotation JOIN assignment "
                                             "ON assignment.id = annotation.assignment_id "
                                             "WHERE assignment.project_id = :p"), {"p": project}).scalar()
        print(f"built a project of {items:,} items, {tasks:,} micro-tasks, {count:,} answers by {ANNOTATORS} "
              f"annotators in {time.perf_counter() - started:.1f} s ({db.engine.dialect.name})", flush=True)
        return project, count


def run_one(database: str, folder: Path, project: int, runs: int) -> dict:
    """In this (fresh) process: re-estimate through the service, as the background job does."""
    from sqlalchemy import select

    from annotate.extensions import db
    from annotate.models import Item, ItemScore
    from annotate.services import scoring

    app = make_app(database, folder)
    with app.app_context():
        reset_peak()
        baseline = memory_mib()["VmRSS"]
        timings = []
        for _ in range(runs):
            started, cpu = time.perf_counter(), time.process_time()
            summary = scoring.reestimate_project(project)
            timings.append((time.perf_counter() - started, time.process_time() - cpu))
        peak = memory_mib()["VmHWM"]
        right = total = 0
        rows = db.session.execute(select(Item.content_hash, ItemScore.consensus).join(
            ItemScore, ItemScore.item_id == Item.id).where(Item.project_id == project))
        for n, consensus in rows:
            total += 1
            right += consensus[0]["value"]["choices"][0] == CLASSES[(n * 7) % 5] if consensus else 0
        db.session.rollback()
    return {"timings": timings, "baseline_mib": baseline, "peak_mib": peak, "items": summary["items"],
            "assignments": summary["assignments"], "models": summary["dawid_skene"],
            "accuracy": right / max(total, 1), "scored": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="an empty database to use (default: SQLite in a temporary folder)")
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument("--overlap", type=int, default=5)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        database, folder, project, runs = json.loads(args.child)
        print(json.dumps(run_one(database, Path(folder), project, runs)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-reestimate-") as tmp:
        folder = Path(tmp)
        database = args.database or f"sqlite:///{folder / 'bench.db'}"
        project, answers = build(database, folder, args.answers, args.overlap)
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
        child = json.dumps([database, str(folder), project, args.runs])
        out = subprocess.run([sys.executable, __file__, "--child", child], capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"the re-estimation failed:\n{out.stderr}")
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        for n, (seconds, cpu) in enumerate(figures["timings"], start=1):
            print(f"run {n}: {answers:,} answers re-estimated in {seconds:.1f} s wall, {cpu:.1f} s CPU "
                  f"({answers / seconds:,.0f} answers/s)", flush=True)
        print(f"{figures['items']:,} items and {figures['assignments']:,} assignments scored, Dawid-Skene on "
              f"{', '.join(figures['models']) or 'nothing'}; peak memory {figures['peak_mib']:.0f} MiB = "
              f"{figures['baseline_mib']:.0f} MiB when it began + "
              f"{figures['peak_mib'] - figures['baseline_mib']:.0f} MiB the re-estimation's own; consensus accuracy against the planted "
              f"classes {figures['accuracy']:.4f} over {figures['scored']:,} items; "
              f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
