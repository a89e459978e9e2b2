"""Neighbourhood features: in uncertainty order the built-in model reads each text
averaged with its nearest project items, and keeps those items beside its versions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from annotate.assist import embedding, learner
from annotate.extensions import db
from annotate.models import AssistModel, Item, ItemEmbedding
from annotate.services import assist
from tests.assist.conftest import label_micro_tasks
from tests.assist.test_builtin import models, predictions

TASK = learner.TextChoiceTask("sentiment", "text", "text", ("Positive", "Negative"), False)


def unit(rows) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_a_text_is_averaged_with_its_nearest_reference_items_but_never_with_itself():
    reference = unit([[1, 0, 0], [0.9, 0.1, 0], [0.8, 0.2, 0], [0.7, 0.3, 0], [0, 0, 1], [0, 0.1, 1]])
    assert learner.neighbours(len(reference)) == learner.MIN_NEIGHBOURS == 3
    inside, outside = reference[0], unit([[0.95, 0.05, 0]])[0]
    found = learner.neighbourhood(np.stack([inside, outside]), reference)
    # The reference's own first row: its three nearest others. A new text: its three nearest, the first included.
    assert np.allclose(found[0], 0.5 * inside + 0.5 * reference[1:4].mean(axis=0), atol=1e-6)
    assert np.allclose(found[1], 0.5 * outside + 0.5 * reference[0:3].mean(axis=0), atol=1e-6)
    # A reference too small to have neighbours leaves the vectors as they are.
    assert np.array_equal(learner.neighbourhood(found, reference[:1]), found)


def test_the_neighbourhood_does_not_depend_on_how_texts_are_chunked(monkeypatch):
    rng = np.random.default_rng(3)
    vectors, reference = unit(rng.normal(size=(50, 8))), unit(rng.normal(size=(700, 8)))
    whole = learner.neighbourhood(vectors, reference)
    monkeypatch.setattr(learner, "NEIGHBOUR_CHUNK", 7)
    assert learner.neighbours(700) == 4
    assert np.allclose(learner.neighbourhood(vectors, reference), whole, atol=1e-6)


def test_a_neighbourhood_model_keeps_its_reference_and_predicts_the_same_once_loaded():
    rng = np.random.default_rng(5)
    centres = unit(rng.normal(size=(2, 16)))
    truth = rng.integers(0, 2, 300)
    vectors = unit(centres[truth] + 0.6 * rng.normal(size=(300, 16)) / 4)
    labels = [[TASK.labels[t]] for t in truth]
    trained = learner.train(TASK, vectors[:100], labels[:100], reference=vectors)
    assert trained.features == learner.NEIGHBOURHOOD_FEATURES and trained.reference.shape == (300, 16)
    guessed = [l[0] for l, _ in trained.predict(vectors[100:])]
    assert np.mean([g == l[0] for g, l in zip(guessed, labels[100:])]) > 0.9
    again = learner.Trained.loads(trained.dumps(), trained.reference_bytes())
    assert again.predict(vectors[100:]) == trained.predict(vectors[100:])
    # Without the items it compares with, the model cannot read a text: it is not used by mistake.
    with pytest.raises(learner.OutdatedModel, match="missing: train a new version"):
        learner.Trained.loads(trained.dumps())
    plain = learner.train(TASK, vectors[:100], labels[:100])
    assert plain.features == learner.FEATURES and plain.reference_bytes() is None
    assert learner.Trained.loads(plain.dumps()).predict(vectors[:5]) == plain.predict(vectors[:5])


def test_uncertainty_order_trains_on_neighbourhoods_and_default_order_on_plain_vectors(
        app, client, assisted, labelers, run_jobs, monkeypatch):
    monkeypatch.setattr(learner, "REFERENCE_SIZE", 30)
    project = assisted.live(items=60, per_task=5, overlap=2, retrain_growth=0.2, queue_order="uncertainty")
    workers = labelers(2)
    label_micro_tasks(project, workers, 4, run_jobs)  # 20 labels: v1
    label_micro_tasks(project, workers, 1, run_jobs)  # 25 > 20 * 1.2: v2
    first, second = models(app, project)
    assert {first.details["features"], second.details["features"]} == {learner.NEIGHBOURHOOD_FEATURES}
    # The items did not change between the versions: one copy of the reference serves both.
    assert first.details["reference"] == second.details["reference"]
    root = Path(app.config["MODEL_ROOT"])
    kept = np.load(root / first.details["reference"])
    assert kept.dtype == np.float16 and kept.shape == (30, embedding.DIMENSIONS)
    assert sorted(p.name for p in (root / f"project-{project}").glob("reference-*")) == [
        Path(first.details["reference"]).name]
    with app.app_context():
        # The sample is the 30 items whose ids hash lowest, so that it moves little as a project grows.
        stored = dict(db.session.execute(select(ItemEmbedding.item_id, ItemEmbedding.vector)
                                         .join(Item, Item.id == ItemEmbedding.item_id)
                                         .where(Item.project_id == project)).all())
        lowest = sorted(stored, key=lambda i: ((i * 2654435761) % 2**32, i))[:30]
        assert np.array_equal(kept, np.stack([np.frombuffer(stored[i], dtype="<f2") for i in lowest]))
        newest = assist.load_model(second)
    # What the open items were given is what the stored model, reference and all, predicts.
    predicted = predictions(app, project)
    texts = [t for t, (_, _, version) in predicted.items() if version == "builtin-v2"]
    assert len(texts) > 20
    for text, (labels, score) in zip(texts, newest.predict(embedding.encoder().encode(texts))):
        assert predicted[text][0] == labels[0] and abs(predicted[text][1] - score) <= 1e-3  # stored at half precision

    # Back to the default order: the refresh trains a version on plain vectors at once.
    assert client.patch(f"/api/projects/{project}/", headers=assisted.requester.headers,
                        json={"queue_order": "default"}).status_code == 200
    run_jobs()
    third = models(app, project)[-1]
    assert (third.version, third.training_size) == (3, 25)
    assert third.details["features"] == learner.FEATURES and third.details["reference"] is None
    with app.app_context():
        assert assist.load_model(third).reference is None
        # A neighbourhood model whose reference file is gone is not used half-blind: it is outdated.
        (root / first.details["reference"]).unlink()
        with pytest.raises(learner.OutdatedModel, match="missing: train a new version"):
            assist.load_model(second)
        assert db.session.scalar(select(AssistModel.id).where(AssistModel.project_id == project,
                                                              AssistModel.version == 4)) is None
