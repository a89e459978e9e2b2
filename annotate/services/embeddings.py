"""Item embeddings: each item's text encoded once (`annotate.assist.embedding`) and stored.

The built-in learner trains and predicts on these vectors. Encoding is
the slow part (milliseconds a text), so it runs in background jobs, outside any
transaction, a chunk at a time; each chunk is stored in one short transaction,
so a job that stops halfway keeps what it did and the next one goes on from
there. The vectors are derived data: a row made by another encoder, or from
another field of the item's data, is computed again.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..assist import embedding, learner
from ..extensions import db
from ..models import Item, ItemEmbedding

CHUNK = 256        # items encoded, then stored in one transaction
ID_BATCH = 5000    # ids per IN list (SQLite allows 32,766 parameters a statement)


def _current(task: learner.TextChoiceTask):
    return sa.and_(ItemEmbedding.encoder == embedding.encoder_id(), ItemEmbedding.data_key == task.data_key)


def _missing(session, project_id: int, task: learner.TextChoiceTask, ids: Sequence[int] | None,
             after: int) -> list[tuple[int, Any]]:
    stmt = (select(Item.id, Item.data).where(Item.project_id == project_id, Item.id > after,
                                             ~sa.exists().where(ItemEmbedding.item_id == Item.id, _current(task)))
            .order_by(Item.id).limit(CHUNK))
    if ids is not None:
        stmt = stmt.where(Item.id.in_(ids))
    return list(session.execute(stmt))


def embed_items(project_id: int, task: learner.TextChoiceTask, item_ids: Sequence[int] | None = None) -> int:
    """Encode the project's items (gold ones too: they teach) that have no current vector, or only
    those of `item_ids`; returns how many were encoded."""
    encoded = 0
    batches = [None] if item_ids is None else [sorted(item_ids)[i:i + ID_BATCH]
                                              for i in range(0, len(item_ids), ID_BATCH)]
    for ids in batches:
        after = 0
        while True:
            chunk = _missing(db.session, project_id, task, ids, after)
            db.session.rollback()  # no transaction held while the model runs
            if not chunk:
                break
            vectors = embedding.encoder().encode([learner.text_of(task, data) for _, data in chunk])
            encoded += _store(task, [item_id for item_id, _ in chunk], vectors)
            after = chunk[-1][0]
    return encoded


def _store(task: learner.TextChoiceTask, ids: list[int], vectors: np.ndarray) -> int:
    rows = [{"item_id": i, "encoder": embedding.encoder_id(), "data_key": task.data_key,
             "vector": embedding.to_bytes(v)} for i, v in zip(ids, vectors)]
    try:
        with db.transaction() as session:
            # Stale rows (another encoder or field) make way for the new ones.
            session.execute(sa.delete(ItemEmbedding).where(ItemEmbedding.item_id.in_(ids)))
            session.execute(sa.insert(ItemEmbedding), rows)
    except IntegrityError:
        return 0  # another job stored this chunk meanwhile: its vectors are the same
    return len(rows)


def vectors(session, task: learner.TextChoiceTask, items) -> dict[int, np.ndarray]:
    """The current vectors of `items` (a list of ids, or a select of them), by item id."""
    found: dict[int, np.ndarray] = {}
    if isinstance(items, (list, tuple)):
        batches = [items[i:i + ID_BATCH] for i in range(0, len(items), ID_BATCH)]
    else:
        batches = [items]
    for batch in batches:
        for item_id, raw in session.execute(select(ItemEmbedding.item_id, ItemEmbedding.vector)
                                            .where(ItemEmbedding.item_id.in_(batch), _current(task))):
            found[item_id] = embedding.from_bytes(raw)
    return found


def sample(session, project_id: int, task: learner.TextChoiceTask, size: int) -> np.ndarray:
    """The current vectors of up to `size` of the project's items, as rows: those whose ids hash lowest,
    so that the sample is a fair one and changes little as the project grows."""
    # In 64 bits: PostgreSQL would do this in the id's 32-bit integer type and overflow.
    spread = (sa.cast(ItemEmbedding.item_id, sa.BigInteger) * sa.literal(2654435761, sa.BigInteger)) % 4294967296
    rows = session.execute(select(ItemEmbedding.vector).join(Item, Item.id == ItemEmbedding.item_id)
                           .where(Item.project_id == project_id, _current(task))
                           .order_by(spread, ItemEmbedding.item_id).limit(size)).scalars().all()
    if not rows:
        return np.zeros((0, embedding.DIMENSIONS), dtype=np.float32)
    return np.stack([embedding.from_bytes(raw) for raw in rows])


def matrix(found: dict[int, np.ndarray], ids: Sequence[int]) -> np.ndarray:
    """The vectors of `ids` as rows, in order; KeyError for an id without one."""
    if not ids:
        return np.zeros((0, embedding.DIMENSIONS), dtype=np.float32)
    return np.stack([found[i] for i in ids])

