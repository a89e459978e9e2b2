"""Uncertainty order: the least certain items are served first, started micro-tasks
never change, and no dispatch invariant breaks under interleaved and concurrent use."""
from __future__ import annotations

import random
import threading

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from annotate.extensions import db, redis
from annotate.models import Assignment, AssistModel, Item, MicroTask, MicroTaskItem
from annotate.services import assist, uncertainty, work
from annotate.services.errors import DomainError
from annotate.services.integrity import violations
from tests.conftest import TEXT_CONFIG, choice


def give_scores(project: int, scores: dict[int, float] | None = None, seed: int = 0) -> dict[int, float]:
    """Model predictions with these scores (random ones by default), as a retrain would write them."""
    with db.transaction() as session:
        ids = list(session.scalars(select(Item.id).where(Item.project_id == project, Item.is_gold.is_(False))))
        if scores is None:
            rng = random.Random(seed)
            scores = {i: rng.random() for i in ids}
        version = (session.scalar(select(func.max(AssistModel.version)).where(AssistModel.project_id == project))
                   or 0) + 1
        model = AssistModel(project_id=project, kind="builtin", version=version, training_size=0,
                            heldout_accuracy=None, details={})
        session.add(model)
        session.flush()
        model_id = model.id
    assist.store_predictions(project, [{"item_id": i, "assist_model_id": model_id, "result": choice("Positive"),
                                        "score": s, "model_version": f"builtin-v{version}"}
                                       for i, s in scores.items()])
    return scores


def items_of(micro_task_id: int) -> list[int]:
    return list(db.session.scalars(select(MicroTaskItem.item_id).where(MicroTaskItem.micro_task_id == micro_task_id)
                                   .order_by(MicroTaskItem.position)))


def test_the_least_certain_items_are_served_first(app, assisted, labelers):
    project = assisted.live(items=40, per_task=2, overlap=1, queue_order="uncertainty")
    with app.app_context():
        layout = [items_of(mt) for mt in db.session.scalars(select(MicroTask.id).where(MicroTask.project_id == project)
                                                            .order_by(MicroTask.seq))]
        ids = sorted(db.session.scalars(select(Item.id).where(Item.project_id == project)))
        # Certainty rises as the id falls: the newest items are the least certain.
        scores = give_scores(project, {item: 1 - n / 80 for n, item in enumerate(ids)})
        moved = uncertainty.reform_head(project)
        sample = {i for i in ids if assist.in_random_sample(i)}
    assert moved["moved"] > 0
    served = []
    for worker in labelers(20):
        work_item = worker.label(project)
        served.append([item["id"] for item in work_item["items"]])
    # The random sample keeps its places (it measures the model); every other place is taken in order of doubt.
    assert 1 <= len(sample) <= 8
    ranked = iter(sorted(set(ids) - sample, key=lambda i: (scores[i], i)))
    assert served == [[i if i in sample else next(ranked) for i in slots] for slots in layout]
    with app.app_context():
        assert violations(project) == []
        again = uncertainty.reform_head(project)
    assert again["moved"] == 0


def test_a_project_in_default_order_is_left_alone(app, assisted):
    project = assisted.live(items=10, per_task=2, overlap=1)
    with app.app_context():
        give_scores(project)
        assert uncertainty.reform_head(project) == {"moved": 0, "why": "the project does not ask for uncertainty order"}


def test_started_and_skipped_micro_tasks_keep_their_items(app, assisted, labelers):
    project = assisted.live(items=20, per_task=2, overlap=2, queue_order="uncertainty")
    holder, skipper = labelers(2)
    held = holder.next(project).get_json()
    skipped = skipper.next(project).get_json()
    skipper.skip(skipped, "not now")
    with app.app_context():
        ids = sorted(db.session.scalars(select(Item.id).where(Item.project_id == project)))
        give_scores(project, {i: (0.0 if i in [x["id"] for x in held["items"] + skipped["items"]] else 0.5)
                              for i in ids})
        before = {mt: items_of(mt) for mt in (held["micro_task"], skipped["micro_task"])}
        give_scores(project, {i: random.Random(i).random() for i in ids})
        result = uncertainty.reform_head(project)
        after = {mt: items_of(mt) for mt in before}
        assert after == before and result["moved"] > 0
        assert violations(project) == []
    again = holder.next(project).get_json()
    assert [i["id"] for i in again["items"]] == [i["id"] for i in held["items"]]


@pytest.mark.slow
def test_reforming_interleaved_with_dispatch_keeps_every_invariant(app, assisted, people):
    annotators = [people.make().id for _ in range(4)]

    class Interleaved(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.ctx = app.app_context()
            self.ctx.push()
            self.project = assisted.live(items=12, per_task=2, overlap=2, queue_order="uncertainty", seed=7)
            self.held: dict[int, int] = {}
            self.seen: dict[int, list[int]] = {}  # assignment -> items it was given

        def teardown(self):
            self.ctx.pop()

        def _call(self, fn, *args):
            try:
                return fn(*args)
            except DomainError as error:
                assert error.status in (403, 404, 409), error.message
                return None
            finally:
                db.session.rollback()

        @rule(who=st.integers(0, 3))
        def next(self, who):
            given = self._call(work.next_assignment, annotators[who], self.project)
            if given is not None:
                self.held[who] = given["assignment_id"]
                items = [i["id"] for i in given["items"]]
                assert self.seen.setdefault(given["assignment_id"], items) == items

        @rule(who=st.integers(0, 3), label=st.sampled_from(["Positive", "Negative"]))
        def submit(self, who, label):
            if who in self.held:
                assignment = db.session.get(Assignment, self.held[who])
                annotations = [{"item_id": i, "result": choice(label), "seconds": 1.0}
                               for i in items_of(assignment.micro_task_id)]
                db.session.rollback()
                self._call(work.submit, annotators[who], self.held[who], annotations)

        @rule(who=st.integers(0, 3))
        def skip(self, who):
            if who in self.held:
                self._call(work.skip, annotators[who], self.held[who], "property test")

        @rule(seed=st.integers(0, 10_000))
        def retrain(self, seed):
            give_scores(self.project, seed=seed)
            uncertainty.reform_head(self.project, head=3)

        @rule()
        def lose_redis(self):
            redis.client.flushdb()

        @invariant()
        def items_stay_where_annotators_saw_them(self):
            assert violations(self.project) == []
            for assignment_id, items in self.seen.items():
                assignment = db.session.get(Assignment, assignment_id)
                assert items_of(assignment.micro_task_id) == items
            db.session.rollback()

    run_state_machine_as_test(Interleaved, settings=settings(
        max_examples=25, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))


@pytest.mark.slow
def test_reforming_while_annotators_take_work_concurrently(app, assisted, labelers):
    project = assisted.live(items=80, per_task=2, overlap=2, queue_order="uncertainty")
    workers = labelers(8)
    given: dict[int, list[int]] = {}
    errors: list[str] = []
    stop = threading.Event()
    moved: list[int] = []

    def annotate(worker):
        try:
            while True:
                response = worker.next(project)
                if response.status_code == 204:
                    return
                if response.status_code == 503:
                    continue
                assignment = response.get_json()
                given[assignment["assignment_id"]] = [i["id"] for i in assignment["items"]]
                annotations = [{"item_id": i["id"], "result": choice("Positive"), "seconds": 1.0}
                               for i in assignment["items"]]
                submitted = worker.client.post(f"/api/work/{assignment['assignment_id']}/submit",
                                               headers=worker.headers, json={"annotations": annotations})
                if submitted.status_code != 200:
                    errors.append(str(submitted.get_json()))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(repr(error))

    def retrain():
        seed = 0
        try:
            with app.app_context():
                while not stop.is_set():
                    seed += 1
                    give_scores(project, seed=seed)
                    moved.append(uncertainty.reform_head(project, head=5)["moved"])
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(repr(error))

    reformer = threading.Thread(target=retrain)
    reformer.start()
    threads = [threading.Thread(target=annotate, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    stop.set()
    reformer.join(timeout=60)
    assert errors == []
    assert sum(moved) > 0  # the queue really was re-formed while work was handed out
    with app.app_context():
        assert violations(project) == []
        for assignment_id, items in given.items():
            assignment = db.session.get(Assignment, assignment_id)
            assert assignment.status == "submitted" and items_of(assignment.micro_task_id) == items
        done = db.session.scalar(select(func.count()).select_from(MicroTask)
                                 .where(MicroTask.project_id == project, MicroTask.status == "done"))
    assert done == 40 and len(given) == 80  # every micro-task, by two people each
