"""Learning a preset's blend weights on each tenant's own events.

A preset's weights were chosen on one data set; on another tenant's data the blend can
trail its own best member (on random MovieLens splits the fixed ``hybrid`` did, by 0.013
NDCG@10 behind ``collaborative``). So after a full training the trainer holds out a share
of the positive events of some users (a validation split of the tenant's events, never a
test file), refits each member on the rest with the settings the full fit chose (no search
of its own), ranks each validation user's top candidates per member once, and searches
weights by re-blending those lists: the preset, each member alone, and random draws
around them. A weighting replaces the preset only when it beats it in a paired comparison
over the same users by two standard errors; members that answer few validation users
(``cold_start`` answers only users with few events) keep their preset weight.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engines.algorithm import Algorithm, Recommended
from engines.data import TrainingData
from engines.evaluation.evaluator import Ranker
from engines.serving.blending import normalise

#: the metric and cut-off the weights are chosen by
K = 10
#: each member proposes this many candidates per validation user
POOL = 200


@dataclass
class LearnedBlend:
    weights: dict[str, float]
    #: what was measured: validation NDCG@10 of the preset and of the weights kept, users,
    #: trials, seconds, and whether the weights changed
    report: dict[str, Any] = field(default_factory=dict)


def validation_split(
    data: TrainingData,
    fraction: float = 0.2,
    *,
    max_users: int = 2000,
    min_events: int = 5,
    seed: int = 0,
    newest: bool = False,
    every_user: bool = False,
) -> tuple[TrainingData, dict[int, set[int]]] | None:
    """(the data without a ``fraction`` of the positive events of up to ``max_users``
    users that have ``min_events`` or more, those users' held-out item pks); None when
    fewer than 50 users qualify. With ``newest`` each user's newest events are held out
    (what comes next, as served), else a random share. With ``every_user`` the share is
    held out of every qualifying user's events, as offline splits are made, and up to
    ``max_users`` of them are scored."""
    positive = data.event_weights > 0
    counts = np.bincount(data.event_users[positive], minlength=data.n_users)
    eligible = np.flatnonzero(counts >= min_events)
    if len(eligible) < 50:
        return None
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(eligible, min(max_users, len(eligible)), replace=False))
    scored = set(chosen.tolist())
    if every_user:
        chosen = eligible
    keep = np.ones(len(data.event_users), dtype=bool)
    held: dict[int, set[int]] = {}
    candidates = np.flatnonzero(positive & np.isin(data.event_users, chosen))
    by_user = data.event_users[candidates]
    order = np.argsort(by_user, kind="stable")
    bounds = np.searchsorted(by_user[order], chosen, side="left")
    ends = np.searchsorted(by_user[order], chosen, side="right")
    for user, lo, hi in zip(chosen.tolist(), bounds.tolist(), ends.tolist(), strict=True):
        events = candidates[order[lo:hi]]
        k = max(1, round(fraction * len(events)))
        if newest:
            out = events[np.argsort(-data.event_times[events], kind="stable")[:k]]
        else:
            out = rng.choice(events, k, replace=False)
        keep[out] = False
        if user in scored:
            held[int(data.user_ids[user])] = {int(data.item_ids[i]) for i in data.event_items[out]}
    train = TrainingData.from_events(
        data.user_ids[data.event_users[keep]],
        data.item_ids[data.event_items[keep]],
        data.event_weights[keep],
        data.event_times[keep],
        data.content,
        now=data.now,
        embedder=data.embedder,
    )
    return train, held


def _holdout_name(newest: bool, *, every_user: bool) -> str:
    if newest:
        return "newest events"
    return "random events of every user" if every_user else "random events"


class CandidateTable:
    """Every validation user's candidates from every member, as one padded array, so that
    a weighting is scored for all users with one product and one partial sort (the blend
    of ``pool``: min-max scaled scores, weighted sum, ties by item id) instead of a
    ``pool`` call per user and weighting."""

    def __init__(
        self, lists: Mapping[str, list[Recommended]], users: list[int], held: dict[int, set[int]]
    ) -> None:
        self.names = list(lists)
        rows: list[np.ndarray] = []
        width = 1
        for i in range(len(users)):
            ids = np.unique(np.concatenate([lists[n][i].ids for n in self.names]))
            rows.append(ids)
            width = max(width, len(ids))
        self.values = np.zeros((len(users), width, len(self.names)), np.float32)
        self.valid = np.zeros((len(users), width), bool)
        self.relevant = np.zeros((len(users), width), bool)
        for i, (u, ids) in enumerate(zip(users, rows, strict=True)):
            self.valid[i, : len(ids)] = True
            self.relevant[i, : len(ids)] = np.isin(ids, np.fromiter(held[u], np.int64))
            for j, n in enumerate(self.names):
                rec = lists[n][i]
                if len(rec.ids):
                    self.values[i, np.searchsorted(ids, rec.ids), j] = normalise(rec.scores)
        self.held = np.array([len(held[u]) for u in users])
        # ties broken by item id, as ``pool`` does: columns are in id order
        self.tie = np.arange(width) * 1e-12

    def ndcg(self, weights: Mapping[str, float], k: int) -> np.ndarray:
        """Per-user NDCG@k of the blend with ``weights`` (members missing weigh 0)."""
        w = np.array([weights.get(n, 0.0) for n in self.names], np.float32)
        # float32 terms summed in float64, as ``pool`` sums them: equal blends stay equal
        totals = (self.values * w).sum(axis=2, dtype=np.float64)
        key = np.where(self.valid, totals - self.tie, -np.inf)
        discounts = 1.0 / np.log2(np.arange(2, k + 2))
        ideal = np.cumsum(discounts)[np.minimum(self.held, k) - 1]  # as ``ndcg_at_k``
        shown = min(k, key.shape[1])  # fewer candidates than k: a shorter list
        top = np.argpartition(-key, shown - 1, axis=1)[:, :shown]
        order = np.take_along_axis(top, np.argsort(-np.take_along_axis(key, top, 1), 1), 1)
        hits = np.take_along_axis(self.relevant & self.valid, order, 1)
        return np.where(self.held > 0, (hits @ discounts[:shown]) / ideal, 0.0)


def learn_blend(
    preset: Mapping[str, float],
    models: Mapping[str, Algorithm],
    data: TrainingData,
    *,
    trials: int = 40,
    budget_seconds: float = 120.0,
    seed: int = 0,
    min_t: float = 2.0,
    newest: bool | None = None,
    threads: int = 1,
) -> LearnedBlend | None:
    """Weights for ``preset`` (member -> weight) fitted to ``data``, whose members are the
    trained ``models``; None when the data is too small to tell weightings apart.

    The validation split holds out each user's newest events when the events have times
    (the service predicts what comes next), a random share otherwise (``newest``
    overrides: an offline evaluation mirrors how its own test split was made)."""
    started = time.monotonic()
    members = {n: m for n, m in models.items() if preset.get(n, 0) > 0}
    timed = bool(len(data.event_times)) and float(np.ptp(data.event_times)) > 0
    if newest is None:
        newest = timed
    # events without times are an offline split's (a LightGCN-style file): its test part
    # took a share of every user's events, which thins the whole graph; a holdout from a
    # few users leaves it complete and, on Gowalla, favoured popularity that the test
    # part does not (docs/benchmarks.md)
    split = validation_split(data, seed=seed, newest=newest, every_user=not timed)
    if split is None or len(members) < 2:
        return None
    train, held = split
    ranker = Ranker(train)
    users = [u for u in held if u in ranker.user_index]
    if len(users) < 50:
        return None

    def proposals(model: Algorithm) -> list[Recommended]:
        return ranker.proposals(model.refitted(train), users, POOL)

    # the members refit side by side (numpy and scipy release the GIL)
    with ThreadPoolExecutor(max(1, threads)) as executor:
        jobs = {n: executor.submit(proposals, m) for n, m in members.items()}
        lists = {n: job.result() for n, job in jobs.items()}
    # members that propose nothing to most validation users keep their preset weight
    searched = [n for n in members if np.mean([len(r.ids) > 0 for r in lists[n]]) >= 0.5]
    fixed = {n: float(preset[n]) for n in members if n not in searched}
    if not searched:
        return None
    scale = sum(preset[n] for n in searched)

    table = CandidateTable(lists, users, held)

    def per_user(weights: Mapping[str, float]) -> np.ndarray:
        return table.ndcg(weights, K)

    base = {n: float(preset[n]) for n in members}
    incumbent = per_user(base)
    preset_ndcg = float(incumbent.mean())
    best = base
    rng = np.random.default_rng(seed)
    names = list(searched)
    draws: list[dict[str, float]] = [{**fixed, **{n: scale * (n == only) for n in names}}
                                     for only in names]  # fmt: skip
    for _ in range(trials):
        share = rng.dirichlet(np.ones(len(names)))
        draws.append({**fixed, **{n: float(scale * w) for n, w in zip(names, share, strict=True)}})
    tried = 0

    def consider(weights: dict[str, float]) -> None:
        nonlocal best, incumbent, tried
        tried += 1
        scores = per_user(weights)
        diff = scores - incumbent
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        if diff.mean() > 0 and (se == 0 or diff.mean() > min_t * se):
            best, incumbent = weights, scores

    for weights in draws:
        if time.monotonic() - started > budget_seconds:
            break
        consider(weights)
    # then around the best: each member's weight moved on a log scale, the others kept
    for _ in range(2):
        for n in names:
            for factor in (0.0, 0.03, 0.1, 0.3, 1.0):
                if time.monotonic() - started > budget_seconds:
                    break
                top = max(best[m] for m in names)
                moved = {**best, n: round(factor * top, 4)}
                if moved != best:
                    consider(moved)
    changed = best is not base
    return LearnedBlend(
        {n: round(w, 4) for n, w in best.items()},
        {
            "validation_ndcg@10_preset": round(preset_ndcg, 4),
            "validation_ndcg@10": round(float(incumbent.mean()), 4),
            "validation_users": len(users),
            "trials": tried,
            "changed": changed,
            "validation": _holdout_name(newest, every_user=not timed),
            "seconds": round(time.monotonic() - started, 2),
        },
    )
