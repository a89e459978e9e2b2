"""Export benchmark: a project with 1,000,000 annotations, exported as
JSON-min and as CSV through the export service (the code the background
job runs), each in a fresh process.

    .venv/bin/python bench/export.py                       # SQLite in a temporary folder
    .venv/bin/python bench/export.py --database postgresql+psycopg://postgres@127.0.0.1/bench_exports
    .venv/bin/python bench/export.py --annotations 200000 --formats JSON_MIN,CSV,JSON,CONSENSUS_CSV

The project is built with set-based SQL (items, micro-tasks, finished and
approved assignments, annotations, item scores), not through the API. The
database given is emptied first. Prints annotations per second and the peak
memory (maximum resident set size) of the process that wrote each export;
the targets are at least 50,000 annotations/s and under 300 MB.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="sentiment" toName="text" choice="single">
<Choice value="Positive"/><Choice value="Negative"/><Choice value="Neutral"/></Choices></View>"""
ANNOTATORS = 30
PER_TASK = 10
TARGET_RATE = 50_000
TARGET_MIB = 300


def make_app(database: str, folder: Path):
    from annotate import create_app

    return create_app({"TESTING": False, "INSTANCE_PATH": str(folder), "DATABASE_URL": database,
                       "FAST_PASSWORD_HASH": True, "EXPORT_ROOT": str(folder / "exports")}, check_services=False)


def build(database: str, folder: Path, annotations: int, overlap: int) -> tuple[int, int, int]:
    """A finished project with at least `annotations` annotations; returns
    (requester id, project id, annotations)."""
    from sqlalchemy import text

    from annotate.extensions import db
    from annotate.models import Base
    from annotate.services import accounts, projects, teams

    app = make_app(database, folder)
    with app.app_context():
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        operator = accounts.create_user("op@bench.org", "Op", "benchmark pw", roles=("operator",))
        team = teams.create_team(operator, "Bench")
        accounts.create_user("req@bench.org", "Req", "benchmark pw")
        requester = teams.add_member(operator, team, "req@bench.org")
        project = projects.create_project(requester, team, {"title": "bench", "label_config": CONFIG,
                                                            "overlap": overlap, "items_per_micro_task": PER_TASK})
        first = None
        for n in range(ANNOTATORS):
            user = accounts.create_user(f"ann{n}@bench.org", f"Annotator {n}", "benchmark pw")
            first = user if first is None else first
        items = -(-annotations // overlap)  # enough items for at least `annotations`
        tasks = (items + PER_TASK - 1) // PER_TASK
        pg = db.engine.dialect.name == "postgresql"
        now = "now()" if pg else "strftime('%Y-%m-%d %H:%M:%f', 'now')"
        series = ("generate_series(1, :n) AS s(n)" if pg else
                  "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :n) SELECT n FROM s) AS s")
        # The k slots of a micro-task: 0 .. k-1.
        slots = ("generate_series(0, :k - 1) AS slot(n)" if pg else
                 "(WITH RECURSIVE slot(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM slot WHERE n < :k - 1) "
                 "SELECT n FROM slot) AS slot")
        data = ("jsonb_build_object('text', 'review number ' || n || ': the delivery was fast and it works well')"
                if pg else "json_object('text', 'review number ' || n || ': the delivery was fast and it works well')")
        result = ("""(CASE (a.annotator_id + mti.item_id) % 3 WHEN 0 THEN '[{"from_name":"sentiment","to_name":"text","""
                  """"type":"choices","value":{"choices":["Negative"]}}]' ELSE '[{"from_name":"sentiment","""
                  """"to_name":"text","type":"choices","value":{"choices":["Positive"]}}]' END)""")
        consensus = """'[{"from_name":"sentiment","to_name":"text","type":"choices","value":{"choices":["Positive"]}}]'"""
        cast = "::jsonb" if pg else ""
        started = time.perf_counter()
        statements = [
            (f"INSERT INTO item (project_id, data, content_hash, is_gold, created_at) "
             f"SELECT :p, {data}, n, false, {now} FROM {series}", {"n": items}),
            (f"INSERT INTO micro_task (project_id, seq, is_qualification, overlap, status, taken, submitted, "
             f"created_at, done_at) SELECT :p, n, false, :k, 'done', :k, :k, {now}, {now} FROM {series}",
             {"n": tasks, "k": overlap}),
            ("INSERT INTO micro_task_item (micro_task_id, position, item_id) "
             "SELECT mt.id, (it.content_hash - 1) % :per, it.id FROM item it JOIN micro_task mt "
             "ON mt.project_id = :p AND mt.seq = (it.content_hash - 1) / :per + 1 WHERE it.project_id = :p",
             {"per": PER_TASK}),
            (f"INSERT INTO assignment (micro_task_id, annotator_id, project_id, status, leased_at, lease_expires_at, "
             f"submitted_at, ended_at, active_seconds, with_predictions, decision) "
             f"SELECT mt.id, :first + (mt.seq + slot.n) % :people, :p, 'submitted', {now}, {now}, {now}, {now}, "
             f"35.0, false, 'approved' FROM micro_task mt CROSS JOIN {slots} WHERE mt.project_id = :p",
             {"first": first, "people": ANNOTATORS, "k": overlap}),
            (f"INSERT INTO annotation (assignment_id, item_id, result, seconds, had_prediction, accepted_prediction, "
             f"created_at) SELECT a.id, mti.item_id, {result}{cast}, 3.5, false, false, {now} "
             f"FROM assignment a JOIN micro_task_item mti ON mti.micro_task_id = a.micro_task_id "
             f"WHERE a.project_id = :p", {}),
            (f"INSERT INTO item_score (item_id, project_id, consensus, confidence, agreement, n_annotators, method, "
             f"flagged, updated_at) SELECT id, :p, {consensus}{cast}, 0.67, 0.33, :k, 'majority_vote', false, {now} "
             f"FROM item WHERE project_id = :p", {"k": overlap}),
        ]
        with db.engine.begin() as connection:
            for sql, params in statements:
                connection.execute(text(sql), {"p": project, **params})
        with db.engine.begin() as connection:
            connection.execute(text("ANALYZE"))
            count = connection.execute(text("SELECT count(*) FROM annotation")).scalar()
        print(f"built {items:,} items, {tasks:,} micro-tasks, {count:,} annotations in SQL in "
              f"{time.perf_counter() - started:.1f} s ({db.engine.dialect.name})", flush=True)
        return requester, project, count


def run_one(database: str, folder: Path, requester: int, project: int, fmt: str) -> dict:
    """In this (fresh) process: write one export through the service, as the background job does."""
    from annotate.services import exports

    app = make_app(database, folder)
    with app.app_context():
        started, cpu = time.perf_counter(), time.process_time()
        download = exports.export_now(requester, project, fmt, exports.Filters())
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        size = download.path.stat().st_size
        download.path.unlink()
    return {"format": fmt, "seconds": seconds, "cpu_seconds": cpu, "bytes": size,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="an empty database to use (default: SQLite in a temporary folder)")
    parser.add_argument("--annotations", type=int, default=1_000_000)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--formats", default="JSON_MIN,CSV")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        database, folder, requester, project, fmt = json.loads(args.child)
        print(json.dumps(run_one(database, Path(folder), requester, project, fmt)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        folder = Path(tmp)
        database = args.database or f"sqlite:///{folder / 'bench.db'}"
        requester, project, annotations = build(database, folder, args.annotations, args.overlap)
        print(f"load average before the exports: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
        failed = False
        for fmt in args.formats.split(","):
            child = json.dumps([database, str(folder), requester, project, fmt.strip()])
            out = subprocess.run([sys.executable, __file__, "--child", child], capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"the {fmt} export failed:\n{out.stderr}")
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            rate = annotations / figures["seconds"]
            ok = rate >= TARGET_RATE and figures["peak_mib"] < TARGET_MIB
            failed |= not ok
            print(f"{figures['format']:>13}: {annotations:,} annotations in {figures['seconds']:.1f} s = "
                  f"{rate:,.0f} annotations/s ({annotations / figures['cpu_seconds']:,.0f}/s of CPU time), "
                  f"{figures['bytes'] / 1e6:,.0f} MB written, peak memory "
                  f"{figures['peak_mib']:.0f} MiB  [{'meets' if ok else 'MISSES'} >= {TARGET_RATE:,}/s, "
                  f"< {TARGET_MIB} MB]", flush=True)
        if failed:
            sys.exit(1)


if __name__ == "__main__":
    main()
