"""The host's half of the split: candidates, masks and top-k over an algorithm's scores.

An algorithm returns a score per item it knows; these functions keep only what may be shown
(candidates allowed by the request's rules, minus excluded items) and rank the rest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from engines.algorithm import Algorithm, Query, Recommended, Scores
from engines.serving.blending import Blended, Pool
from engines.toolkit import position, positions


def allowed(
    item_ids: np.ndarray, candidates: np.ndarray | None, exclude: np.ndarray | None
) -> np.ndarray:
    """Boolean mask over ``item_ids``: in ``candidates`` (when given), not in ``exclude``.
    Both are item primary keys; ``candidates`` must be sorted."""
    if candidates is None:
        keep = np.ones(len(item_ids), dtype=bool)
    else:
        keep = np.zeros(len(item_ids), dtype=bool)
        if len(candidates) and len(item_ids):
            pos, known = positions(item_ids, candidates)
            keep[pos[known]] = True
    if exclude is not None and len(exclude) and len(item_ids):
        pos, known = positions(item_ids, np.asarray(exclude, np.int64))
        keep[pos[known]] = False
    return keep


def allowed_except(
    keep: np.ndarray, item_ids: np.ndarray, exclude: np.ndarray | None
) -> np.ndarray:
    """``keep`` (a mask over ``item_ids``) without the ids in ``exclude``."""
    if exclude is None or not len(exclude) or not len(item_ids):
        return keep
    keep = keep.copy()
    pos, known = positions(item_ids, np.asarray(exclude, np.int64))
    keep[pos[known]] = False
    return keep


def top_positions(scores: np.ndarray, keep: np.ndarray | None, limit: int) -> np.ndarray:
    """Positions of the ``limit`` highest finite ``scores`` where ``keep``, best first;
    ties keep item order (also at the cut), so results are deterministic."""
    if limit <= 0 or not len(scores):
        return np.empty(0, np.int64)
    top = _above_sampled_threshold(scores, keep, limit)
    if top is None:
        valid = np.isfinite(scores) if keep is None else keep & np.isfinite(scores)
        top = np.flatnonzero(valid)
    k = min(limit, len(top))
    if len(top) > k:  # all items tied with the k-th stay, for the sort to break the tie
        values = scores[top]
        kth = np.partition(values, len(values) - k)[len(values) - k]
        top = top[values >= kth]
    return top[np.lexsort((top, -scores[top]))][:k]


#: items a threshold is read off (see ``_above_sampled_threshold``)
SAMPLE = 512


def _above_sampled_threshold(
    scores: np.ndarray, keep: np.ndarray | None, k: int
) -> np.ndarray | None:
    """Positions of every kept score at or above a threshold read off a strided sample,
    when they are at least ``k`` (so they hold the top ``k``); None when the sample cannot
    tell.

    A request ranks each algorithm's scores over the whole catalogue for its best few
    hundred: a full partition of 10k scores cost ~85 µs per algorithm, and masking every
    score before it a few passes more; the threshold reads the scores once."""
    n = len(scores)
    if n < 8 * SAMPLE or 8 * k > n:
        return None
    step = n // SAMPLE
    sample = scores[::step]
    usable = np.isfinite(sample) if keep is None else np.isfinite(sample) & keep[::step]
    values = sample[usable]
    # the r-th largest usable sample value, r about twice the sample's share of the k
    r = 2 * k * len(sample) // n + 8
    if len(values) < r:
        return None
    threshold = np.partition(values, len(values) - r)[len(values) - r]
    above = np.flatnonzero(scores >= threshold)  # NaN compares False; threshold is finite
    above = above[np.isfinite(scores[above])]  # +inf does not
    if keep is not None:
        above = above[keep[above]]
    return above if len(above) >= k else None


def recommended(model: Algorithm, query: Query, scores: np.ndarray, top: np.ndarray) -> Recommended:
    """The ranked positions as item ids, with the algorithm's explanations if it has any."""
    because: dict[int, int] = {}
    if len(top):
        causes = model.explain(query, top)
        if causes is not None:
            because = {
                int(model.item_ids[t]): int(c)
                for t, c in zip(top.tolist(), np.asarray(causes).tolist(), strict=True)
                if c >= 0
            }
    return Recommended(model.item_ids[top], scores[top].astype(np.float32), because)


def rank(
    model: Algorithm,
    query: Query,
    limit: int,
    exclude: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    keep: np.ndarray | None = None,
    explain: bool = True,
) -> Recommended:
    """Top ``limit`` items of ``model`` for ``query``: never an id in ``exclude``, only ids
    in ``candidates`` (or, precomputed, only where ``keep``). Without ``explain`` the
    explanations are left to ``explain_pool``."""
    return rank_scores(model, query, model.score(query), limit, exclude, candidates, keep, explain)


def rank_scores(
    model: Algorithm,
    query: Query,
    scores: np.ndarray | None,
    limit: int,
    exclude: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    keep: np.ndarray | None = None,
    explain: bool = True,
) -> Recommended:
    """``rank`` over scores already computed (by a batch, say)."""
    if scores is None or not len(scores):
        return Recommended.empty()
    if keep is None:
        keep = allowed(model.item_ids, candidates, exclude)
    else:
        keep = allowed_except(keep, model.item_ids, exclude)
    top = top_positions(scores, keep, limit)
    if explain:
        return recommended(model, query, scores, top)
    return Recommended(model.item_ids[top], scores[top].astype(np.float32), positions=top)


def explain_pool(
    models: Mapping[str, Algorithm],
    query: Query,
    pool: Pool,
    picked: Sequence[int] | np.ndarray | None = None,
) -> list[Blended]:
    """The pool's items at ``picked`` (all when None), each contribution with its
    ``because_item``: an algorithm explains only the returned items it proposed, not its
    whole candidate list."""
    ids = pool.ids if picked is None else pool.ids[np.asarray(picked, np.int64)]
    causes: dict[str, dict[int, int]] = {}
    for name, _, rec, _ in pool.parts:
        model = models.get(name)
        if model is None or not len(ids):
            continue
        mine = ids[np.isin(ids, rec.ids)]
        pos, known = positions(model.item_ids, mine)
        if not known.any():
            continue
        found = model.explain(query, pos[known])
        if found is None:
            continue
        causes[name] = {
            item: int(cause)
            for item, cause in zip(mine[known].tolist(), np.asarray(found).tolist(), strict=True)
            if cause >= 0
        }
    return pool.take(picked, causes)


def rank_similar(
    model: Algorithm,
    item_id: int,
    limit: int,
    candidates: np.ndarray | None = None,
    keep: np.ndarray | None = None,
    scores: Scores | None = None,
) -> Recommended:
    """Items most like ``item_id`` according to ``model`` (never the item itself);
    ``scores``: the model's ``similar`` scores for it, when already computed."""
    pos = position(model.item_ids, item_id)
    if pos is None:
        return Recommended.empty()
    if scores is None:
        scores = model.similar(pos)
    if scores is None:
        return Recommended.empty()
    if keep is None:
        keep = allowed(model.item_ids, candidates, None)
    keep = keep.copy()
    keep[pos] = False
    top = top_positions(scores, keep, limit)
    return Recommended(model.item_ids[top], scores[top].astype(np.float32))


def rank_batch(
    model: Algorithm, queries: Sequence[Query], limit: int, chunk: int = 1000
) -> list[list[int]]:
    """Top ``limit`` item ids for many queries, never an item of a query's own history
    (evaluation): scored in chunks through the algorithm's ``score_batch``."""
    out: list[list[int]] = []
    for start in range(0, len(queries), chunk):
        batch = queries[start : start + chunk]
        scores = model.score_batch(batch)
        for row, query in enumerate(batch):
            s = scores[row]
            pos, known = positions(model.item_ids, query.items)
            s[pos[known]] = -np.inf
            out.append(model.item_ids[top_positions(s, None, limit)].tolist())
    return out
