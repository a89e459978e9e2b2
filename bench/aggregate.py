"""Benchmark of consensus aggregation: accuracy on real crowd data and speed at scale.

Run from the repository root::

    .venv/bin/python bench/aggregate.py

Reads the crowd answer sets (dog, face) from ``../shared/data/crowd``
relative to the repository root, or from the folder in ``CROWD_DATA``;
prints the accuracy of majority vote and Dawid-Skene against the expert
labels, next to crowd-kit's published figures, then times Dawid-Skene on
1,500,000 synthetic answers and reports its peak memory.
"""

from __future__ import annotations

import csv
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotate.scoring.consensus import dawid_skene, majority_vote  # noqa: E402

# crowd-kit 1.4.2 figures from the data set's README.
REFERENCE = {"dog": (0.8116, 0.8426), "face": (0.6336, 0.6404)}


def crowd_dir() -> Path:
    return Path(os.environ.get("CROWD_DATA", ROOT.parent / "shared" / "data" / "crowd"))


def load(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int, int, np.ndarray, np.ndarray]:
    """Answers as dense indices, plus the items that have a truth and their labels."""
    folder = crowd_dir() / name
    with open(folder / "answer.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(folder / "truth.csv", newline="") as f:
        truth_rows = list(csv.DictReader(f))
    items, item_idx = np.unique([r["question"] for r in rows], return_inverse=True)
    workers, worker_idx = np.unique([r["worker"] for r in rows], return_inverse=True)
    label = np.array([int(r["answer"]) for r in rows])
    truth_items = np.array([r["question"] for r in truth_rows])
    truth = np.array([int(r["truth"]) for r in truth_rows])
    pos = np.searchsorted(items, truth_items)
    known = (pos < len(items)) & (items[np.minimum(pos, len(items) - 1)] == truth_items)
    n_classes = int(max(label.max(), truth.max())) + 1
    return item_idx, worker_idx, label, len(items), len(workers), n_classes, pos[known], truth[known]


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def real_data() -> None:
    print("Accuracy against expert labels (crowd-kit 1.4.2's figure in brackets); time of one call")
    print(
        f"{'set':<5} {'items':>6} {'answers':>8} {'workers':>8} | {'majority vote':>22} | {'Dawid-Skene':>22} | {'DS iters':>8}"
    )
    for name in ("dog", "face"):
        item, worker, label, n_items, n_workers, n_classes, truth_pos, truth = load(name)
        mv, t_mv = timed(majority_vote, item, label, n_items, n_classes)
        ds, t_ds = timed(dawid_skene, item, worker, label, n_items, n_workers, n_classes)
        acc_mv = float((mv.labels[truth_pos] == truth).mean())
        acc_ds = float((ds.labels[truth_pos] == truth).mean())
        ref_mv, ref_ds = REFERENCE[name]
        print(
            f"{name:<5} {n_items:>6} {len(label):>8,} {n_workers:>8} | "
            f"{acc_mv:.4f} ({ref_mv:.4f}) {t_mv * 1e3:5.1f} ms | "
            f"{acc_ds:.4f} ({ref_ds:.4f}) {t_ds * 1e3:5.1f} ms | {ds.iterations:>8}"
        )


def synthetic(n_items: int = 300_000, k: int = 5, n_workers: int = 100, n_classes: int = 5, seed: int = 7):
    """k distinct workers per item; workers of mixed skill, a few adversarial."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_items)
    # k distinct workers per item: a random offset plus steps that never wrap onto each other.
    first = rng.integers(0, n_workers, n_items)
    worker = (first[:, None] + np.arange(k) * (n_workers // k)) % n_workers
    accuracy = rng.uniform(0.35, 0.95, n_workers)
    confusion = np.empty((n_workers, n_classes, n_classes))
    off = (1 - accuracy)[:, None, None] * rng.dirichlet(np.ones(n_classes - 1), (n_workers, n_classes))
    for c in range(n_classes):  # place the off-diagonal mass around the diagonal
        others = [x for x in range(n_classes) if x != c]
        confusion[:, c, others] = off[:, c]
        confusion[:, c, c] = accuracy
    cum = confusion.cumsum(axis=2)
    w = worker.ravel()
    t = np.repeat(truth, k)
    label = (rng.random(w.size)[:, None] > cum[w, t]).sum(axis=1)
    label = np.minimum(label, n_classes - 1)
    item = np.repeat(np.arange(n_items), k)
    return item, w, label, truth


def scale() -> None:
    n_items, k, n_workers, n_classes = 300_000, 5, 100, 5
    item, worker, label, truth = synthetic(n_items, k, n_workers, n_classes)
    input_mib = (item.nbytes + worker.nbytes + label.nbytes) / 2**20
    print()
    print(f"Dawid-Skene at scale: {label.size:,} answers, {n_items:,} items, {n_workers} workers, {n_classes} classes")
    print(
        f"{'Dawid-Skene':<24} {'best of 5':>9} {'median':>8} {'iters':>6} {'peak MiB':>9} {'accuracy':>9} {'MV acc':>8}"
    )
    mv, t_mv = timed(majority_vote, item, label, n_items, n_classes)
    acc_mv = float((mv.labels == truth).mean())
    shuffle = np.random.default_rng(0).permutation(label.size)
    cases = [
        ("float32", np.float32, slice(None)),
        ("float64", np.float64, slice(None)),
        ("float32, rows shuffled", np.float32, shuffle),
    ]
    for name, dtype, rows in cases:
        args = (item[rows], worker[rows], label[rows], n_items, n_workers, n_classes)
        runs = [timed(dawid_skene, *args, dtype=dtype) for _ in range(5)]
        ds, secs = runs[0][0], sorted(t for _, t in runs)
        tracemalloc.start()
        dawid_skene(*args, dtype=dtype)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        acc = float((ds.labels == truth).mean())
        print(
            f"{name:<24} {secs[0]:>8.3f}s {secs[2]:>7.3f}s {ds.iterations:>6} "
            f"{peak / 2**20:>9.1f} {acc:>9.4f} {acc_mv:>8.4f}"
        )
    print(f"majority vote on the same answers: {t_mv:.3f}s")
    print(f"peak MiB: NumPy allocations traced by tracemalloc in a separate run (inputs: {input_mib:.0f} MiB)")


if __name__ == "__main__":
    real_data()
    scale()
