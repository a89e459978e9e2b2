"""Export benchmark: a project with 1,000,000 annotations, exported as
JSON-min and as CSV, and a bounding-box project with 1,000,000 annotations
exported as COCO, through the export service (the code the background job
runs), each in a fresh process.

    .venv/bin/python bench/export.py                       # SQLite in a temporary folder
    .venv/bin/python bench/export.py --database postgresql+psycopg://postgres@127.0.0.1/bench_exports
    .venv/bin/python bench/export.py --annotations 200000 --formats JSON_MIN,CSV,JSON,CONSENSUS_CSV,COCO

The projects are built with set-based SQL (items, micro-tasks, finished and
approved assignments, annotations, item scores), not through the API: a
text-classification project for the text formats, and for COCO, YOLO and
VOC an image project whose annotations and consensus hold two boxes each
(the images are http URLs, so no image file is read or archived). The
database given is emptied first. Prints annotations per second and the peak
memory (the peak resident set size, VmHWM, reset just before the export
began) of the process that wrote each export, split into what the process
held when the export began (the app, and for COCO, YOLO and VOC
label-studio-sdk's converter, which only those import) and the export's own
cost (the peak minus that); the targets are at least 50,000 annotations/s
and a peak under 300 MB. The process's lifetime peak (ru_maxrss) is printed
too: start-up (imports, the app) can reach higher than the export does. On SQLite an export reads
with a 4 MiB page cache on each of its connections (the connection's 64 MiB is put back afterwards).
The rate is wall time: on a shared machine it moves with the load, so the
rate per CPU second of the exporting process is printed too, and with a
PostgreSQL server on this machine the CPU of the server processes that served
the export and the rate per CPU second of both (the export writes while the
server sends the next rows, so on an idle machine with two cores or more the
wall time comes near the larger of the two, not their sum). COCO writes
one label set per item (its consensus), so it also prints the COCO
annotations (boxes) written.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cpu import cpu_seconds  # noqa: E402  (bench/ is on the path when run as a script)
from memory import memory_mib, reset_peak  # noqa: E402
from people import fresh_schema_with_people  # noqa: E402

CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="sentiment" toName="text" choice="single">
<Choice value="Positive"/><Choice value="Negative"/><Choice value="Neutral"/></Choices></View>"""
IMAGE_CONFIG = """<View><Image name="image" value="$image"/>
<RectangleLabels name="box" toName="image"><Label value="Car"/><Label value="Person"/></RectangleLabels></View>"""
IMAGE_FORMATS = ("COCO", "YOLO", "VOC")
ANNOTATORS = 30
PER_TASK = 10
TARGET_RATE = 50_000
TARGET_MIB = 300


def make_app(database: str, folder: Path):
    from annotate import create_app

    return create_app({"TESTING": False, "INSTANCE_PATH": str(folder), "DATABASE_URL": database,
                       "FAST_PASSWORD_HASH": True, "EXPORT_ROOT": str(folder / "exports")}, check_services=False)


def _box(label: str, x: float, y: float) -> str:
    # ": " after each key: SQLAlchemy's text() would read ":640" as a bound parameter.
    return json.dumps({"from_name": "box", "to_name": "image", "type": "rectanglelabels", "original_width": 640,
                       "original_height": 480, "value": {"x": x, "y": y, "width": 20.5, "height": 15.25,
                                                         "rotation": 0, "rectanglelabels": [label]}})


def build(database: str, folder: Path, annotations: int, overlap: int, kinds: list[str]) -> dict[str, tuple]:
    """For each kind ("text", "image"), a finished project with at least
    `annotations` annotations; returns {kind: (requester id, project id, annotations)}."""
    app = make_app(database, folder)
    with app.app_context():
        requester, team, first = fresh_schema_with_people(ANNOTATORS)
        return {kind: (requester, *_project(kind, requester, team, first, annotations, overlap)) for kind in kinds}


def _project(kind: str, requester: int, team: int, first: int, annotations: int, overlap: int) -> tuple[int, int]:
    from sqlalchemy import text

    from annotate.extensions import db
    from annotate.services import projects

    project = projects.create_project(requester, team, {
        "title": f"bench {kind}", "label_config": IMAGE_CONFIG if kind == "image" else CONFIG,
        "overlap": overlap, "items_per_micro_task": PER_TASK})
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
    build_object = "jsonb_build_object" if pg else "json_object"
    if kind == "image":
        data = (f"{build_object}('image', 'https://img.example.org/street-' || n || '.jpg', "
                f"'width', 640, 'height', 480)")
        two_boxes = "'[" + _box("Car", 10.0, 20.0) + "," + _box("Person", 55.5, 40.0) + "]'"
        moved = "'[" + _box("Car", 11.0, 20.0) + "," + _box("Person", 55.5, 41.5) + "]'"
        result = f"(CASE (a.annotator_id + mti.item_id) % 3 WHEN 0 THEN {moved} ELSE {two_boxes} END)"
        consensus = two_boxes
    else:
        data = f"{build_object}('text', 'review number ' || n || ': the delivery was fast and it works well')"
        result = ("""(CASE (a.annotator_id + mti.item_id) % 3 WHEN 0 THEN '[{"from_name":"sentiment","""
                  """"to_name":"text","type":"choices","value":{"choices":["Negative"]}}]' ELSE """
                  """'[{"from_name":"sentiment","to_name":"text","type":"choices","value":{"choices":"""
                  """["Positive"]}}]' END)""")
        consensus = ("""'[{"from_name":"sentiment","to_name":"text","type":"choices","value":"""
                     """{"choices":["Positive"]}}]'""")
    cast = "::jsonb" if pg else ""
    started = time.perf_counter()
    statements = [
        (f"INSERT INTO item (project_id, data, content_hash, is_gold, created_at) "
         f"SELECT :p, {data}, n, false, {now} FROM {series}", {"n": items}),
        (f"INSERT INTO micro_task (project_id, seq, is_qualification, overlap, status, taken, submitted, "
         f"created_at, done_at) SELECT :p, n, false, :k, 'done', :k, :k, {now}, {now} FROM {series}",
         {"n": tasks, "k": overlap}),
        # Fresh statistics: those of an earlier project would make the joins below nested loops.
        ("ANALYZE", {}),
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
        count = connection.execute(text("SELECT count(*) FROM annotation JOIN assignment "
                                         "ON assignment.id = annotation.assignment_id "
                                         "WHERE assignment.project_id = :p"), {"p": project}).scalar()
    print(f"built a {kind} project: {items:,} items, {tasks:,} micro-tasks, {count:,} annotations in SQL "
          f"in {time.perf_counter() - started:.1f} s ({db.engine.dialect.name})", flush=True)
    return project, count


def server_cpu(session) -> dict[int, float] | None:
    """CPU seconds so far of each PostgreSQL server process serving this database, when
    the server runs on this machine (its processes are in /proc); None on SQLite or a remote server."""
    from sqlalchemy import text

    if session.get_bind().dialect.name != "postgresql":
        return None
    pids = session.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).all()
    if not any(Path(f"/proc/{pid}").exists() for pid in pids):
        return None
    return {pid: cpu_seconds(pid) for pid in pids}


def run_one(database: str, folder: Path, requester: int, project: int, fmt: str) -> dict:
    """In this (fresh) process: write one export through the service, as the background job does."""
    from annotate.extensions import db
    from annotate.services import exports

    app = make_app(database, folder)
    with app.app_context():
        if fmt in IMAGE_FORMATS:  # their export imports the converter (about 115 MiB): not the export's own cost
            from label_studio_sdk.converter import Converter  # noqa: F401

        gc.collect()
        reset_peak()
        baseline = memory_mib()["VmRSS"]
        # The server's own work: the processes serving the export's connections (one opens during it).
        server_before = server_cpu(db.session)
        started, cpu = time.perf_counter(), time.process_time()
        download = exports.export_now(requester, project, fmt, exports.Filters())
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        server_after = server_cpu(db.session)
        server = (None if server_before is None or server_after is None else
                  sum(used - server_before.get(pid, 0.0) for pid, used in server_after.items()))
        peak = memory_mib()["VmHWM"]
        size = download.path.stat().st_size
        boxes = None
        if fmt == "COCO":  # read back the boxes written, a line at a time (the file is one JSON document)
            import zipfile

            with zipfile.ZipFile(download.path) as archive, archive.open("result.json") as fh:
                inside, boxes = False, 0
                for line in fh:
                    if line.startswith(b'"annotations": ['):
                        inside = True
                    elif inside and line.startswith(b"{"):
                        boxes += 1
                    elif inside and line.startswith(b"]"):
                        break
        download.path.unlink()
    return {"format": fmt, "seconds": seconds, "cpu_seconds": cpu, "server_cpu_seconds": server, "bytes": size,
            "boxes": boxes,
            "baseline_mib": baseline, "peak_mib": peak,
            "startup_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="an empty database to use (default: SQLite in a temporary folder)")
    parser.add_argument("--annotations", type=int, default=1_000_000)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--formats", default="JSON_MIN,CSV,COCO")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        database, folder, requester, project, fmt = json.loads(args.child)
        print(json.dumps(run_one(database, Path(folder), requester, project, fmt)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        folder = Path(tmp)
        database = args.database or f"sqlite:///{folder / 'bench.db'}"
        wanted = [f.strip().upper() for f in args.formats.split(",") if f.strip()]
        kinds = sorted({"image" if f in IMAGE_FORMATS else "text" for f in wanted}, reverse=True)
        built = build(database, folder, args.annotations, args.overlap, kinds)
        print(f"load average before the exports: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
        failed = False
        for fmt in wanted:
            requester, project, annotations = built["image" if fmt in IMAGE_FORMATS else "text"]
            child = json.dumps([database, str(folder), requester, project, fmt])
            out = subprocess.run([sys.executable, __file__, "--child", child], capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"the {fmt} export failed:\n{out.stderr}")
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            rate = annotations / figures["seconds"]
            ok = rate >= TARGET_RATE and figures["peak_mib"] < TARGET_MIB
            failed |= not ok
            boxes = "" if figures["boxes"] is None else f" ({figures['boxes']:,} COCO boxes)"
            server = figures["server_cpu_seconds"]
            cpu = f"{figures['cpu_seconds']:.1f} s CPU = {annotations / figures['cpu_seconds']:,.0f}/s of CPU time"
            if server is not None:
                both = figures["cpu_seconds"] + server
                cpu += (f"; PostgreSQL's CPU {server:.1f} s; both {both:.1f} s = "
                        f"{annotations / both:,.0f}/s of their CPU time")
            print(f"{figures['format']:>13}: {annotations:,} annotations in {figures['seconds']:.1f} s = "
                  f"{rate:,.0f} annotations/s ({cpu}), "
                  f"{figures['bytes'] / 1e6:,.0f} MB written{boxes}, peak memory "
                  f"{figures['peak_mib']:.0f} MiB = {figures['baseline_mib']:.0f} MiB before it began + "
                  f"{figures['peak_mib'] - figures['baseline_mib']:.0f} MiB the export's own "
                  f"(the process's lifetime peak {figures['startup_peak_mib']:.0f} MiB), "
                  f"load {os.getloadavg()[0]:.1f}  "
                  f"[{'meets' if ok else 'MISSES'} >= {TARGET_RATE:,}/s, "
                  f"< {TARGET_MIB} MB]", flush=True)
        if failed:
            sys.exit(1)


if __name__ == "__main__":
    main()
