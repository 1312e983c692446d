"""Offline evaluation: splits, full-ranking top-k metrics per algorithm and per blend.

Every test user's history is their training events; the model ranks ALL items except those
(no sampled negatives), and the metrics of ``engines.evaluation.metrics`` are averaged over users.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from engines.algorithm import Algorithm, Query, Recommended
from engines.data import TrainingData
from engines.datasets import Events
from engines.embedders import Embedder
from engines.evaluation.metrics import (
    average_precision_at_k,
    coverage,
    mean_popularity,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)
from engines.serving.blending import Pool, blend, pool
from engines.serving.cold_routing import cold_slots, route_cold
from engines.serving.diversity import intra_list_diversity, mmr
from engines.serving.ranking import rank_batch, top_positions
from engines.toolkit import positions, rows_of


@dataclass
class Split:
    train: Events
    test: Events
    name: str


def fixed(train: Events, test: Events) -> Split:
    return Split(train, test, "fixed")


def random_holdout(
    events: Events, fraction: float = 0.2, seed: int = 0, min_items: int = 2
) -> Split:
    """Hold out ``fraction`` of each user's events (users with at least ``min_items``)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(events))
    users = events.users[order]
    counts = np.bincount(np.unique(users, return_inverse=True)[1])
    _, inverse = np.unique(users, return_inverse=True)
    # rank of each event within its user's shuffled events
    rank = np.zeros(len(users), np.int64)
    seen: dict[int, int] = {}
    for k, u in enumerate(inverse):
        rank[k] = seen.get(u, 0)
        seen[u] = rank[k] + 1
    quota = np.where(counts >= min_items, np.floor(counts * fraction), 0).astype(np.int64)
    held = np.zeros(len(events), bool)
    held[order] = rank < quota[inverse]
    return Split(events.take(~held), events.take(held), f"random({fraction}, seed={seed})")


def temporal(events: Events, fraction: float = 0.2, min_items: int = 2) -> Split:
    """Hold out each user's latest ``fraction`` of events (the future predicted from the
    past)."""
    order = np.lexsort((events.times, events.users))
    users = events.users[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    held = np.zeros(len(events), bool)
    for s, e in zip(starts, ends, strict=True):
        n = e - s
        if n >= min_items:
            k = max(1, int(np.floor(n * fraction)))
            held[order[e - k : e]] = True
    return Split(events.take(~held), events.take(held), f"temporal({fraction})")


def with_cold_users(
    split: Split, share: float, keep: int, seed: int = 0
) -> tuple[Split, list[int]]:
    """Make a ``share`` of the test users new: keep only their ``keep`` earliest training
    events. Returns the changed split and those users (the cold-user protocol)."""
    users = np.unique(split.test.users)
    rng = np.random.default_rng(seed)
    cold = np.sort(rng.choice(users, max(1, int(len(users) * share)), replace=False))
    train = split.train
    order = np.lexsort((train.times, train.users))
    mask = np.ones(len(train), bool)
    counts: dict[int, int] = {}
    cold_set = set(cold.tolist())
    for pos in order:
        u = int(train.users[pos])
        if u in cold_set:
            counts[u] = counts.get(u, 0) + 1
            mask[pos] = counts[u] <= keep
    return Split(
        train.take(mask), split.test, f"{split.name}, cold users <= {keep} events"
    ), cold.tolist()


def training_data(events: Events, embedder: Embedder | None = None) -> TrainingData:
    return TrainingData.from_events(
        events.users, events.items, events.weights, events.times, events.content, embedder=embedder
    )


class ItemVectors:
    """Item vectors by item pk (zeros for items without one)."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.ids = np.asarray(ids, np.int64)
        self.vectors = np.asarray(vectors, np.float32)

    def of(self, items: Sequence[int]) -> np.ndarray:
        return rows_of(self.ids, self.vectors, np.asarray(items, np.int64))


@dataclass
class Result:
    name: str
    k: int
    users: int
    recall: float
    ndcg: float
    precision: float
    map: float
    coverage: float
    mean_popularity: float
    fit_seconds: float
    score_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return asdict(self)


def relevant_sets(test: Events, positive_only: bool = True) -> dict[int, set[int]]:
    mask = test.weights > 0 if positive_only else np.ones(len(test), bool)
    out: dict[int, set[int]] = {}
    for u, i in zip(test.users[mask].tolist(), test.items[mask].tolist(), strict=True):
        out.setdefault(u, set()).add(i)
    return out


class Ranker:
    """Turns trained models (alone or blended) into top-k lists for test users, in
    batches; a user's own training events are never recommended to them."""

    def __init__(self, data: TrainingData) -> None:
        self.data = data
        order = np.lexsort((-data.event_times, data.event_users))  # by user, newest first
        self.order = order
        users = data.event_users[order]
        self.bounds = np.searchsorted(users, np.arange(data.n_users + 1))
        self.user_index = {int(u): n for n, u in enumerate(data.user_ids)}

    def query(self, user: int) -> Query:
        idx = self.user_index.get(user)
        if idx is None:
            return Query(now=self.data.now)
        d = self.data
        rows = self.order[self.bounds[idx] : self.bounds[idx + 1]]
        return Query(
            user,
            d.item_ids[d.event_items[rows]],
            d.event_weights[rows],
            d.event_times[rows],
            self.data.now,
        )

    def queries(self, users: Sequence[int]) -> list[Query]:
        return [self.query(u) for u in users]

    def rank(self, model: Algorithm, users: list[int], k: int) -> list[list[int]]:
        return rank_batch(model, self.queries(users), k)

    def proposals(
        self, model: Algorithm, users: list[int], pool: int, chunk: int = 1000
    ) -> list[Recommended]:
        """Each user's top ``pool`` of ``model`` (what a blend mixes)."""
        out: list[Recommended] = []
        for start in range(0, len(users), chunk):
            queries = self.queries(users[start : start + chunk])
            scores = model.score_batch(queries)
            for row, query in enumerate(queries):
                s = scores[row]
                pos, known = positions(model.item_ids, query.items)
                s[pos[known]] = -np.inf
                top = top_positions(s, None, pool)
                out.append(Recommended(model.item_ids[top], s[top].astype(np.float32)))
        return out

    def blend_pools(
        self,
        models: Mapping[str, tuple[float, Algorithm]],
        users: list[int],
        size: int,
        proposals: int = 200,
    ) -> list[Pool]:
        """Each user's blended candidates (the best ``size``), before the final cut; each
        algorithm proposes its top ``proposals``."""
        lists = {n: self.proposals(m, users, proposals) for n, (_, m) in models.items()}
        return [
            pool({n: (models[n][0], lists[n][u]) for n in models}, size) for u in range(len(users))
        ]

    def rank_blend(
        self,
        models: Mapping[str, tuple[float, Algorithm]],
        users: list[int],
        k: int,
        pool: int = 200,
    ) -> list[list[int]]:
        return [p.ids.tolist() for p in self.blend_pools(models, users, k, pool)]


def score(
    name: str,
    lists: list[list[int]],
    users: list[int],
    relevant: dict[int, set[int]],
    k: int,
    data: TrainingData,
    fit_s: float,
    score_s: float,
) -> Result:
    pop_counts = np.bincount(data.event_items, minlength=data.n_items)
    popularity = dict(zip(data.item_ids.tolist(), pop_counts.tolist(), strict=True))
    rel = [relevant[u] for u in users]
    return Result(
        name=name,
        k=k,
        users=len(users),
        recall=float(np.mean([recall_at_k(r, s, k) for r, s in zip(lists, rel, strict=True)])),
        ndcg=float(np.mean([ndcg_at_k(r, s, k) for r, s in zip(lists, rel, strict=True)])),
        precision=float(
            np.mean([precision_at_k(r, s, k) for r, s in zip(lists, rel, strict=True)])
        ),
        map=float(
            np.mean([average_precision_at_k(r, s, k) for r, s in zip(lists, rel, strict=True)])
        ),
        coverage=coverage(lists, data.n_items),
        mean_popularity=mean_popularity(lists, popularity),
        fit_seconds=round(fit_s, 2),
        score_seconds=round(score_s, 2),
    )


def evaluate(
    algorithms: Mapping[str, Algorithm],
    split: Split,
    k: int = 20,
    blends: Mapping[str, Mapping[str, float]] | None = None,
    users: list[int] | None = None,
    embedder: Embedder | None = None,
    progress: Callable[[str], None] | None = None,
    cold_items_below: int | None = None,
    learn_blends: bool = False,
    diversity: float = 0.0,
    cold_routing: tuple[int, float] | None = None,
) -> list[Result]:
    """Fit each algorithm on ``split.train``, rank for every test user, and score.

    Every list's intra-list diversity (1 − mean pairwise cosine of the content model's item
    vectors) is reported when ``content`` is evaluated; with ``diversity`` each blend is
    also scored re-ranked by maximal marginal relevance of that strength.

    With ``learn_blends`` each blend is also scored with the weights the trainer would learn
    for it on ``split.train`` alone (``engines/training/blend_learning.py``).

    With ``cold_items_below`` only test items with fewer training events than that count as
    relevant (and only users who have such items are scored): the cold-item protocol.

    With ``cold_routing`` = (events, share) each blend is also scored with items of fewer
    training events than that routed into ``share`` of each list
    (``engines/serving/cold_routing.py``), as the service does."""
    data = training_data(split.train, embedder)
    relevant = relevant_sets(split.test)
    if cold_items_below is not None:
        counts = dict(zip(*np.unique(split.train.items, return_counts=True), strict=True))
        relevant = {
            u: {i for i in s if counts.get(i, 0) < cold_items_below} for u, s in relevant.items()
        }
        relevant = {u: s for u, s in relevant.items() if s}
    users = [u for u in users if u in relevant] if users is not None else sorted(relevant)
    ranker = Ranker(data)
    results: list[Result] = []
    fit_times: dict[str, float] = {}

    def record(name: str, lists: list[list[int]], fit_s: float, started: float) -> Result:
        result = score(name, lists, users, relevant, k, data, fit_s, time.perf_counter() - started)
        if vectors is not None:
            result.extra["ild"] = round(
                float(np.mean([intra_list_diversity(vectors.of(lst)) for lst in lists])), 4
            )
        results.append(result)
        if progress:
            progress(f"{name}: recall@{k}={result.recall:.4f} ndcg@{k}={result.ndcg:.4f}")
        return result

    vectors: ItemVectors | None = None
    content = algorithms.get("content")
    if content is not None:  # fitted first: its vectors measure every list's diversity
        started = time.perf_counter()
        content.fit(data)
        fit_times["content"] = time.perf_counter() - started
        found = content.item_vectors()
        vectors = ItemVectors(found[1], found[2]) if found is not None else None
    for name, model in algorithms.items():
        started = time.perf_counter()
        if name not in fit_times:
            model.fit(data)
            fit_times[name] = time.perf_counter() - started
        started = time.perf_counter()
        record(name, ranker.rank(model, users, k), fit_times[name], started)
    cold = np.empty(0, np.int64)
    if cold_routing is not None:
        per_item = np.bincount(data.event_items, minlength=len(data.item_ids))
        cold = np.sort(data.item_ids[per_item < cold_routing[0]])

    def routed(label: str, members: Mapping[str, tuple[float, Algorithm]], fit_s: float) -> None:
        if cold_routing is None:
            return
        sources = {n for n, (w, m) in members.items() if w > 0 and m.scores_cold_items}
        if not sources:
            return
        started = time.perf_counter()
        slots = cold_slots(cold_routing[1], k)
        lists = [
            route_cold(p.ids[:k].tolist(), p, cold, sources, slots)[0]
            for p in ranker.blend_pools(members, users, k)
        ]
        record(f"{label} (cold routing)", lists, fit_s, started)

    for name, weights in (blends or {}).items():
        members = {n: (w, algorithms[n]) for n, w in weights.items() if n in algorithms}
        started = time.perf_counter()
        lists = ranker.rank_blend(members, users, k)
        result = record(name, lists, sum(fit_times[n] for n in members), started)
        result.extra["weights"] = dict(weights)
        routed(name, members, sum(fit_times[n] for n in members))
        if diversity > 0 and vectors is not None:
            started = time.perf_counter()
            pools = ranker.blend_pools(members, users, max(100, 3 * k))
            lists = [
                p.ids[mmr(p.totals, vectors.of(p.ids.tolist()), diversity, k)].tolist()
                for p in pools
            ]
            fit_s = sum(fit_times[n] for n in members)
            record(f"{name} (diversity {diversity:g})", lists, fit_s, started)
        if learn_blends:
            from engines.training.blend_learning import learn_blend

            started = time.perf_counter()
            # the validation split is carved the way this evaluation's test split was
            newest = split.name.startswith("temporal")
            learned = learn_blend(
                weights, {n: m for n, (_, m) in members.items()}, data, newest=newest
            )
            if learned is None:
                continue
            learning = time.perf_counter() - started
            chosen = {n: (learned.weights[n], algorithms[n]) for n in members}
            started = time.perf_counter()
            lists = ranker.rank_blend(chosen, users, k)
            fit_s = sum(fit_times[n] for n in members) + learning
            result = record(f"{name} (learned on validation)", lists, fit_s, started)
            result.extra["weights"] = dict(learned.weights)
            result.extra["learning"] = learned.report
            routed(f"{name} (learned on validation)", chosen, fit_s)
    return results


def table(results: list[Result], published: Mapping[str, tuple[float, float]] | None = None) -> str:
    """A Markdown table of results (and published reference numbers, if given)."""
    k = results[0].k if results else 20
    head = (
        f"| model | Recall@{k} | NDCG@{k} | Precision@{k} | MAP@{k} | coverage | "
        "mean popularity | ILD | fit s | score s |"
    )
    rows = [head, "|" + " --- |" * 10]
    for r in results:
        ild = f"{r.extra['ild']:.3f}" if "ild" in r.extra else ""
        rows.append(
            f"| {r.name} | {r.recall:.4f} | {r.ndcg:.4f} | {r.precision:.4f} | "
            f"{r.map:.4f} | {r.coverage:.3f} | {r.mean_popularity:.1f} | {ild} | "
            f"{r.fit_seconds:.1f} | {r.score_seconds:.1f} |"
        )
    for name, (rec, ndcg) in (published or {}).items():
        rows.append(f"| {name} (published) | {rec:.4f} | {ndcg:.4f} | | | | | | | |")
    return "\n".join(rows)


def tune_blend(
    algorithms: Mapping[str, Algorithm],
    split: Split,
    k: int = 10,
    trials: int = 60,
    seed: int = 0,
    pool: int = 200,
    embedder: Embedder | None = None,
    users: list[int] | None = None,
) -> tuple[dict[str, float], float, list[tuple[dict[str, float], float]]]:
    """Random search of blend weights on ``split`` (which must be carved from training data
    only). Each algorithm ranks once; the trials only re-blend the cached lists. Returns the
    best weights, their NDCG@k, and every trial."""
    data = training_data(split.train, embedder)
    relevant = relevant_sets(split.test)
    users = [u for u in users if u in relevant] if users is not None else sorted(relevant)
    ranker = Ranker(data)
    for model in algorithms.values():
        model.fit(data)
    proposals = {n: ranker.proposals(m, users, pool) for n, m in algorithms.items()}
    cached = {u: {n: proposals[n][i] for n in algorithms} for i, u in enumerate(users)}
    rng = np.random.default_rng(seed)
    names = list(algorithms)
    candidates = [dict.fromkeys(names, 1.0)] + [
        {
            n: float(w)
            for n, w in zip(names, rng.dirichlet(np.ones(len(names))) * len(names), strict=True)
        }
        for _ in range(trials)
    ]
    candidates += [{n: float(n == only) for n in names} for only in names]
    history: list[tuple[dict[str, float], float]] = []
    for weights in candidates:
        lists = [
            [b.item_id for b in blend({n: (weights[n], r) for n, r in cached[u].items()}, k)]
            for u in users
        ]
        ndcg = float(
            np.mean([ndcg_at_k(lst, relevant[u], k) for lst, u in zip(lists, users, strict=True)])
        )
        history.append((weights, ndcg))
    best_weights, best_ndcg = max(history, key=lambda t: t[1])
    return best_weights, best_ndcg, history
