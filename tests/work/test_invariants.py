"""Property-based tests: random interleavings of next, submit, skip, heartbeat,
expiry, reclaim, block and Redis loss never break a dispatch invariant."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from annotate.extensions import db, redis
from annotate.models import Assignment
from annotate.services import work
from annotate.services.errors import DomainError
from tests.conftest import choice
from annotate.services.integrity import violations

ANNOTATORS = 4


@pytest.mark.slow
def test_random_interleavings_keep_every_invariant(app, projects, people):
    annotator_ids = [people.make().id for _ in range(ANNOTATORS)]
    operator_id = people.make("operator").id
    projects_made = []

    class Dispatching(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.ctx = app.app_context()
            self.ctx.push()
            # A fresh project each run: 3 micro-tasks of 2 items, 2 annotators each.
            self.project = projects.live(items=6, per_task=2, overlap=2)
            projects_made.append(self.project)
            self.held: dict[int, dict] = {}
            self.history: dict[int, list[int]] = {a: [] for a in annotator_ids}

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

        @rule(who=st.integers(0, ANNOTATORS - 1))
        def next(self, who):
            annotator = annotator_ids[who]
            work_item = self._call(work.next_assignment, annotator, self.project)
            if work_item is not None:
                live = self.held.get(annotator)
                if live is not None and db.session.get(Assignment, live["assignment_id"]).status == "leased":
                    # Asking again while holding a live lease returns that same lease.
                    assert work_item["assignment_id"] == live["assignment_id"]
                db.session.rollback()
                self.held[annotator] = work_item
                self.history[annotator].append(work_item["assignment_id"])

        @rule(who=st.integers(0, ANNOTATORS - 1), label=st.sampled_from(["Positive", "Negative"]))
        def submit(self, who, label):
            annotator = annotator_ids[who]
            if not self.history[annotator]:
                return
            assignment_id = self.history[annotator][-1]
            items = db.session.get(Assignment, assignment_id).micro_task.items
            annotations = [{"item_id": i.item_id, "result": choice(label), "seconds": 1.0} for i in items]
            self._call(work.submit, annotator, assignment_id, annotations)

        @rule(who=st.integers(0, ANNOTATORS - 1))
        def skip(self, who):
            annotator = annotator_ids[who]
            if self.history[annotator]:
                self._call(work.skip, annotator, self.history[annotator][-1], "random skip")

        @rule(who=st.integers(0, ANNOTATORS - 1))
        def heartbeat(self, who):
            annotator = annotator_ids[who]
            if self.history[annotator]:
                self._call(work.heartbeat, annotator, self.history[annotator][-1])

        @rule(who=st.integers(0, ANNOTATORS - 1))
        def run_out(self, who):
            annotator = annotator_ids[who]
            if not self.history[annotator]:
                return
            with db.transaction() as session:
                assignment = session.get(Assignment, self.history[annotator][-1])
                if assignment.status == "leased":
                    assignment.lease_expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
                    key = f"{assignment.micro_task_id}:{annotator}"
                    if redis.client.zscore("d:leases", key) is not None:
                        redis.client.zadd("d:leases", {key: 1})

        @rule()
        def reclaim(self):
            self._call(work.reclaim_expired)

        @rule(who=st.integers(0, ANNOTATORS - 1), blocked=st.booleans())
        def block(self, who, blocked):
            if blocked:
                self._call(work.block, operator_id, annotator_ids[who], "property test")
            else:
                self._call(work.unblock, operator_id, annotator_ids[who])

        @rule()
        def lose_redis(self):
            redis.client.flushdb()

        @invariant()
        def invariants_hold(self):
            assert violations(self.project) == []

    run_state_machine_as_test(Dispatching, settings=settings(
        max_examples=40, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))
    with app.app_context():
        assert violations() == []
