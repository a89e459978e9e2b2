"""Uncertainty order: the items the model is least sure of are labeled first.

An item's doubt is 1 - its prediction score (the model's confidence): least
confidence, which for two labels is also margin and entropy order. Weighing
the doubt by how typical an item is of the open items (information density)
needed more labels on the Rotten Tomatoes benchmark, in 15 seeds on a
development split of its pool as on its own split (`bench/assist.py`), and so
did a diversity step over the batch (BADGE, cluster-margin, MMR) and a
committee's disagreement in a replay of its schedule (README, Benchmarks).
What did pay was the model's view: with the built-in learner, a project in
this order gets a model that reads each text's neighbourhood
(`learner.neighbourhood`), so the doubt is that of a region of the project
rather than of one odd text.

The dispatch queue hands out never-started micro-tasks oldest `seq` first,
so instead of re-scoring anything in Redis we re-form the head of the queue:
the items with the most doubt move into the first unstarted
micro-tasks, and the items they displace take their old places. Only
micro-tasks nobody was ever given are touched (no assignment row, so no
one has seen their items), and they are locked while their items move; the
lease path takes the same row lock, so a micro-task either is re-formed
before anyone takes it or is left alone. Redis holds no item ids, so its
state stays right and `next` keeps its cost.

Items of the random sample (`assist.in_random_sample`, 10% of them) are never
moved: they are labeled at their import-order pace, so held-out accuracy is
measured on labels the model did not choose.
"""
from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy import select

from ..extensions import db
from ..models import Assignment, AssistModel, Item, MicroTask, MicroTaskItem, Prediction, Project
from . import assist

log = logging.getLogger(__name__)

# Micro-tasks at the head of the queue re-formed per round: enough for the
# annotators until the next retrain, few enough that a round is a short write.
HEAD = 200


def _never_given():
    return ~sa.exists().where(Assignment.micro_task_id == MicroTask.id)


def _scores(session, project_id: int) -> dict[int, float]:
    """Each item's newest model-made prediction score (a confidence; lower is less sure)."""
    stmt = (select(Prediction.item_id, Prediction.score)
            .join(AssistModel, AssistModel.id == Prediction.assist_model_id)
            .where(AssistModel.project_id == project_id, Prediction.score.is_not(None))
            .order_by(Prediction.id))
    return {item_id: score for item_id, score in session.execute(stmt)}


def _doubt(scores: dict[int, float], item: int) -> float:
    """How much labeling `item` is worth now; unpredicted items come first, as nothing is known of them."""
    if item not in scores:
        return float("inf")
    return 1.0 - scores[item]


def reform_head(project_id: int, *, head: int = HEAD) -> dict[str, Any]:
    """Put the least certain items into the first `head` unstarted micro-tasks."""
    with db.transaction() as session:
        # One round per project at a time: the project row lock orders them. NO KEY UPDATE
        # (key_share) leaves the foreign-key checks of new leases free to proceed.
        project = session.scalar(select(Project).where(Project.id == project_id).with_for_update(key_share=True))
        if project is None or project.queue_order != "uncertainty":
            return {"moved": 0, "why": "the project does not ask for uncertainty order"}
        scores = _scores(session, project_id)
        if not scores:
            return {"moved": 0, "why": "no predictions yet"}
        unstarted = (select(MicroTask.id).where(MicroTask.project_id == project_id, MicroTask.status == "open",
                                                MicroTask.is_qualification.is_(False), MicroTask.taken == 0,
                                                MicroTask.submitted == 0, _never_given()))
        rows = session.execute(
            select(MicroTaskItem.micro_task_id, MicroTask.seq, MicroTaskItem.position, MicroTaskItem.item_id)
            .join(MicroTask, MicroTask.id == MicroTaskItem.micro_task_id)
            .join(Item, Item.id == MicroTaskItem.item_id)
            .where(MicroTaskItem.micro_task_id.in_(unstarted), Item.is_gold.is_(False))
            .order_by(MicroTask.seq, MicroTaskItem.position)).all()
        # The random sample keeps its places, so its labels stay a fair measure of the model (assist.HELD_OUT_WORDS).
        rows = [row for row in rows if not assist.in_random_sample(row.item_id)]
        if not rows:
            return {"moved": 0, "why": "no unstarted micro-tasks"}
        head_ids = []
        for mt_id, _seq, _pos, _item in rows:
            if not head_ids or head_ids[-1] != mt_id:
                head_ids.append(mt_id)
        head_ids = set(head_ids[:head])
        slots = [(mt, pos) for mt, _seq, pos, _item in rows if mt in head_ids]
        where = {item: (mt, pos) for mt, _seq, pos, item in rows}
        ranked = sorted(where, key=lambda item: (-_doubt(scores, item), item))
        wanted = ranked[:len(slots)]
        incoming = [item for item in wanted if where[item][0] not in head_ids]
        at = {(mt, pos): item for mt, _seq, pos, item in rows}
        chosen = set(wanted)
        leaving = [at[slot] for slot in slots if at[slot] not in chosen]
        # Each incoming item swaps places with one leaving item; then the head is sorted by score.
        placement = dict(where)
        for new, old in zip(incoming, leaving):
            placement[new], placement[old] = where[old], where[new]
        in_head = sorted((item for item in placement if placement[item][0] in head_ids),
                         key=lambda item: (-_doubt(scores, item), item))
        for item, slot in zip(in_head, slots):
            placement[item] = slot
        changed = {item: slot for item, slot in placement.items() if slot != where[item]}
        if not changed:
            return {"moved": 0, "why": "the head of the queue is already in uncertainty order"}
        touched = {slot[0] for slot in changed.values()} | {where[item][0] for item in changed}
        # Lock them, and give up this round if someone took one meanwhile.
        locked = set(session.scalars(select(MicroTask.id).where(MicroTask.id.in_(touched), MicroTask.taken == 0,
                                                                 _never_given())
                                     .order_by(MicroTask.id).with_for_update(key_share=True)))
        if locked != touched:
            return {"moved": 0, "why": "micro-tasks were taken meanwhile; the next round re-forms them"}
        keys = [(mt, pos) for mt, pos in (where[item] for item in changed)]
        session.execute(sa.delete(MicroTaskItem).where(
            sa.tuple_(MicroTaskItem.micro_task_id, MicroTaskItem.position).in_(keys)))
        session.execute(sa.insert(MicroTaskItem), [{"micro_task_id": mt, "position": pos, "item_id": item}
                                                   for item, (mt, pos) in changed.items()])
        return {"moved": len(changed), "micro_tasks": len(touched)}

