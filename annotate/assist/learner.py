"""The built-in learner: text classification for `Choices` over `Text`.

A logistic regression (one per label for multiple choice) over each text's
sentence embedding (`annotate.assist.embedding`, computed once per item and
stored). On the Rotten Tomatoes benchmark it is about 7 points more accurate
than TF-IDF with naive Bayes at 300 to 500 labels, and refits on 10,000
labels in well under a second, so a background job can retrain between two
micro-tasks. No network, no GPU: scikit-learn on stored vectors.

For uncertainty order the model reads each text's neighbourhood too: its
vector averaged with the mean of its nearest items in a sample of the
project (`neighbourhood`, a one-step graph smoothing). The items a smoothed
model doubts are then the doubtful regions of the project rather than odd
single texts: uncertainty order needed 54% of the labels random order
needs on the benchmark's split and 64% on a development split, against 70%
and 74% on plain vectors (30 seeds; README, Benchmarks). In random order the smoothing costs a point of accuracy
below 500 labels, so projects in the default order keep plain vectors. It
costs time too: a refit on 10,000 labels takes about a second instead of a
quarter, and predicting 16,000 texts a second instead of a million.

No ORM here: `annotate.services.assist` gathers the labels and vectors and
stores the models and predictions.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..labelconfig import LabelConfig

# scikit-learn is imported where a model is fitted or loaded, not with the app:
# web processes check configs with this module but never train.

MIN_LABELS = 20       # fewer consensus labels than this teach nothing worth showing
HELD_OUT_SHARE = 0.2  # labels kept back to measure accuracy; the final model sees all
MIN_HELD_OUT = 5      # fewer held-out labels than this measure nothing
FEATURES = "all-MiniLM-L6-v2 sentence embeddings"
NEIGHBOURHOOD_FEATURES = f"{FEATURES}, each averaged with its nearest project items"
# The neighbourhood: at most REFERENCE_SIZE of the project's items (the service picks them), and of
# those the nearest NEIGHBOURS_SHARE (20 of 4,000, at least MIN_NEIGHBOURS); a text's own vector weighs
# OWN_WEIGHT. Chosen among 11 settings in 30-seed replays on the benchmark's pool, on its split and on a
# development split (README, Benchmarks): against random order on plain vectors, half weight beat 0.3
# and 0.7, and 20 of 4,000 did as well as 40 and better than 10 of 2,000.
REFERENCE_SIZE = 4000
NEIGHBOURS_SHARE = 1 / 200
MIN_NEIGHBOURS = 3
OWN_WEIGHT = 0.5
SAME_TEXT = 0.999  # a reference vector this close to the text's own is the text itself: not its neighbour
NEIGHBOUR_CHUNK = 512  # texts compared with the reference at a time: 8 MB of similarities, kept in cache
CLASSIFIER = "logistic regression"


class CannotLearn(ValueError):
    """The project or its labels do not suit the built-in learner; the message says why."""


@dataclass(frozen=True)
class TextChoiceTask:
    """What the learner predicts: one Choices control over one Text object."""

    control: str
    to_name: str
    data_key: str
    labels: tuple[str, ...]
    multiple: bool


def text_choice_task(config: LabelConfig) -> TextChoiceTask:
    """The first Choices control of `config` whose object is a Text; CannotLearn if none."""
    objects = {o.name: o for o in config.objects}
    for control in config.controls:
        if control.tag != "Choices" or control.dynamic_labels or not control.labels:
            continue
        for to_name in control.to_name:
            target = objects.get(to_name)
            if target is not None and target.tag in ("Text", "HyperText") and target.data_key:
                return TextChoiceTask(control.name, to_name, target.data_key, control.labels,
                                      control.choice == "multiple")
    raise CannotLearn("the built-in learner needs a Choices control over a Text object in the label config")


def choices_in(task: TextChoiceTask, result: list | None) -> list[str] | None:
    """The labels a Label Studio result gives the task's control, or None when it gives none."""
    for region in result or ():
        if isinstance(region, dict) and region.get("from_name") == task.control:
            chosen = (region.get("value") or {}).get("choices") or []
            known = [c for c in chosen if c in task.labels]
            return known or None
    return None


def result_for(task: TextChoiceTask, labels: Sequence[str]) -> list[dict]:
    """A Label Studio result choosing `labels`, as a pre-annotation."""
    return [{"from_name": task.control, "to_name": task.to_name, "type": "choices",
             "value": {"choices": list(labels)}}]


def text_of(task: TextChoiceTask, data: dict | None) -> str:
    """The text the learner reads from an item's data."""
    value = (data or {}).get(task.data_key)
    return value if isinstance(value, str) else "" if value is None else str(value)


class OutdatedModel(ValueError):
    """A stored model made by an earlier learner, which reads features this one no longer has."""


def neighbours(reference_size: int) -> int:
    """How many nearest reference items make a text's neighbourhood."""
    return max(MIN_NEIGHBOURS, round(reference_size * NEIGHBOURS_SHARE))


def neighbourhood(vectors: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each row of `vectors` averaged (OWN_WEIGHT to its own) with the mean of its nearest rows of
    `reference`, leaving out the text itself when it is in the reference. All rows are unit vectors, so
    the dot product is the cosine. Memory stays at one NEIGHBOUR_CHUNK block of similarities."""
    from scipy import sparse

    vectors = np.asarray(vectors, dtype=np.float32)
    reference = np.asarray(reference, dtype=np.float32)
    if not len(vectors) or not len(reference):
        return vectors
    k = min(neighbours(len(reference)), len(reference) - 1)
    if k < 1:
        return vectors
    out = np.empty_like(vectors)
    for start in range(0, len(vectors), NEIGHBOUR_CHUNK):
        block = vectors[start:start + NEIGHBOUR_CHUNK]
        rows = np.arange(len(block))
        sims = block @ reference.T
        nearest = np.argpartition(sims, -(k + 1), axis=1)[:, -(k + 1):]  # the k + 1 nearest, unordered
        near = np.take_along_axis(sims, nearest, axis=1)
        top = near.argmax(axis=1)
        # Of the k + 1, leave out the text itself if it is there, else the farthest.
        dropped = np.where(near[rows, top] > SAME_TEXT, top, near.argmin(axis=1))
        kept = np.ones(nearest.shape, dtype=bool)
        kept[rows, dropped] = False
        # The mean of the kept reference rows, as a sparse product: no (rows x k x dimensions) copy.
        mean = sparse.csr_matrix((np.full(len(block) * k, 1 / k, dtype=np.float32),
                                  nearest[kept], np.arange(0, len(block) * k + 1, k)),
                                 shape=(len(block), len(reference))) @ reference
        out[start:start + NEIGHBOUR_CHUNK] = OWN_WEIGHT * block + (1 - OWN_WEIGHT) * mean
    return out


@dataclass
class Trained:
    model: object
    task: TextChoiceTask
    training_size: int
    heldout_accuracy: float | None
    heldout_size: int
    seconds: float
    # The project items whose neighbourhoods the model reads (None: plain vectors), half precision.
    reference: np.ndarray | None = None

    @property
    def features(self) -> str:
        return FEATURES if self.reference is None else NEIGHBOURHOOD_FEATURES

    def features_of(self, vectors: np.ndarray) -> np.ndarray:
        """What the classifier reads for these item embeddings."""
        return vectors if self.reference is None else neighbourhood(vectors, self.reference)

    def predict(self, vectors: np.ndarray) -> list[tuple[list[str], float]]:
        """(labels, confidence) per row of `vectors` (item embeddings). Confidence is the top class
        probability for single choice, and the mean certainty of the per-label decisions for multiple."""
        if not len(vectors):
            return []
        proba = self.model.predict_proba(self.features_of(vectors))
        if self.task.multiple:
            classes = self.task.labels  # the binariser's column order
            chosen = proba >= 0.5
            confidence = np.where(chosen, proba, 1 - proba).mean(axis=1)
            out = []
            for row, p, c in zip(chosen, proba, confidence):
                labels = [classes[i] for i in np.flatnonzero(row)] or [classes[int(np.argmax(p))]]
                out.append((labels, float(c)))
            return out
        classes = self.model.classes_
        best = proba.argmax(axis=1)
        return [([str(classes[b])], float(p[b])) for b, p in zip(best, proba)]

    def dumps(self) -> bytes:
        """The classifier, without the reference: versions trained on the same items share one copy of
        it (`reference_bytes`), which `loads` is given back."""
        import joblib

        buffer = io.BytesIO()
        joblib.dump({"model": self.model, "task": self.task, "features": self.features}, buffer)
        return buffer.getvalue()

    def reference_bytes(self) -> bytes | None:
        if self.reference is None:
            return None
        buffer = io.BytesIO()
        np.save(buffer, self.reference, allow_pickle=False)
        return buffer.getvalue()

    @staticmethod
    def loads(raw: bytes, reference: bytes | None = None) -> "Trained":
        import joblib

        loaded = joblib.load(io.BytesIO(raw))
        features = loaded.get("features")
        if features not in (FEATURES, NEIGHBOURHOOD_FEATURES):
            raise OutdatedModel(f"the model reads {features or 'tf-idf word 1-2 grams'}, "
                                f"not {FEATURES}: train a new version")
        if features == NEIGHBOURHOOD_FEATURES and reference is None:
            raise OutdatedModel("the model reads neighbourhoods, and the project items it compares with are "
                                "missing: train a new version")
        kept = np.load(io.BytesIO(reference), allow_pickle=False) if features == NEIGHBOURHOOD_FEATURES else None
        return Trained(loaded["model"], loaded["task"], 0, None, 0, 0.0, kept)


def _classifier(multiple: bool):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    # scikit-learn's default strength (C=1) on unit-length vectors: chosen before looking at the
    # benchmark's held-out set, and not tuned on it.
    regression = LogisticRegression(C=1.0, max_iter=1000)
    return OneVsRestClassifier(regression) if multiple else regression


def train(task: TextChoiceTask, vectors: np.ndarray, labels: Sequence[Sequence[str]], *,
          held_out: Sequence[bool] | None = None, seed: int = 0, reference: np.ndarray | None = None) -> Trained:
    """Fit on (vector, labels) pairs: measure accuracy on the held-out ones, then refit on everything.

    `held_out` marks the pairs to measure on (at least MIN_HELD_OUT of them, else no accuracy);
    without it a random HELD_OUT_SHARE is. Accuracy is exact match (the whole label set, for
    multiple choice). With `reference` (embeddings of up to REFERENCE_SIZE of the project's items,
    labeled or not), the model reads each text's `neighbourhood` among them.
    """
    if len(vectors) != len(labels):
        raise ValueError("vectors and labels differ in length")
    if held_out is not None and len(held_out) != len(labels):
        raise ValueError("held_out and labels differ in length")
    if len(labels) < MIN_LABELS:
        raise CannotLearn(f"{len(labels)} consensus labels so far; the learner needs at least {MIN_LABELS}")
    started = time.perf_counter()
    if reference is not None:
        reference = np.asarray(reference, dtype=np.float16)  # as stored: the model reads what it keeps
        vectors = neighbourhood(vectors, reference)
    vectors = np.asarray(vectors, dtype=np.float32)
    if task.multiple:
        from sklearn.preprocessing import MultiLabelBinarizer

        binariser = MultiLabelBinarizer(classes=list(task.labels))
        y = binariser.fit_transform([list(l) for l in labels])
        if not y.any():
            raise CannotLearn("no label has been chosen yet")
    else:
        y = np.array([l[0] for l in labels])
        if len(set(y.tolist())) < 2:
            raise CannotLearn(f"every consensus label so far is {y[0]!r}; the learner needs two kinds")

    if held_out is None:
        order = np.random.default_rng(seed).permutation(len(labels))
        cut = int(len(labels) * HELD_OUT_SHARE)
        held, kept = order[:cut], order[cut:]
    else:
        mask = np.asarray(held_out, dtype=bool)
        held, kept = np.flatnonzero(mask), np.flatnonzero(~mask)
    accuracy = None
    if len(held) >= MIN_HELD_OUT and len(kept) and _learnable(y[kept], task.multiple):
        guessed = _fit(task, vectors[kept], y[kept]).predict(vectors[held])
        if task.multiple:
            accuracy = float(np.mean(np.all(guessed == y[held], axis=1)))
        else:
            accuracy = float(np.mean(guessed == y[held]))
    model = _fit(task, vectors, y)
    return Trained(model, task, len(labels), accuracy, len(held) if accuracy is not None else 0,
                   time.perf_counter() - started, reference)


def interval(accuracy: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson interval of an accuracy measured on `n` labels: on the 80 labels of a random
    tenth of 800, a measured 0.60 means anything from 0.49 to 0.70."""
    if n <= 0:
        return 0.0, 1.0
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def _learnable(y: np.ndarray, multiple: bool) -> bool:
    return bool(y.any()) if multiple else len(set(y.tolist())) >= 2


def _fit(task: TextChoiceTask, vectors: np.ndarray, y: np.ndarray):
    # For multiple choice, a label nobody chose yet is predicted constant by OneVsRestClassifier.
    return _classifier(task.multiple).fit(vectors, y)
