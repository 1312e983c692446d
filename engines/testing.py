"""A conformance suite for algorithm plugins, built-in or third party.

Subclass :class:`AlgorithmConformance` in your plugin's tests and set ``algorithm``::

    from engines.testing import AlgorithmConformance
    from my_plugin import MyAlgorithm

    class TestMyAlgorithm(AlgorithmConformance):
        algorithm = MyAlgorithm

pytest then checks the contract every Recograph algorithm must keep.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import numpy as np
import pytest

from engines.algorithm import Algorithm, HistoryEvent, Query
from engines.data import ItemContent, TrainingData
from engines.serving.batching import ScoreBatcher
from engines.serving.ranking import rank, rank_similar


def planted_data(
    n_clusters: int = 3,
    users_per_cluster: int = 30,
    items_per_cluster: int = 20,
    events_per_user: int = 8,
    seed: int = 7,
) -> TrainingData:
    """Users of cluster k only touch items of cluster k, whose content names cluster k: any
    sensible personalised recommender keeps a user inside their cluster."""
    rng = np.random.default_rng(seed)
    users, items, weights, times = [], [], [], []
    content = []
    for k in range(n_clusters):
        ids = np.arange(items_per_cluster) + 1000 * (k + 1)
        content += [
            ItemContent(
                int(i), "thing", f"cluster{k} thing {i}", None, (f"genre{k}",), (f"tag{k}",)
            )
            for i in ids
        ]
        pop = np.linspace(2.0, 0.5, items_per_cluster)
        pop /= pop.sum()
        for u in range(users_per_cluster):
            user = 1 + k * users_per_cluster + u
            chosen = rng.choice(ids, size=events_per_user, replace=False, p=pop)
            for j, item in enumerate(chosen):
                users.append(user)
                items.append(int(item))
                weights.append(float(rng.choice([1.0, 2.0, 10.0])))
                times.append(1_700_000_000.0 + 3600 * (j + u))
    return TrainingData.from_events(
        np.array(users), np.array(items), np.array(weights), np.array(times), content
    )


def cluster_of(item_id: int) -> int:
    return item_id // 1000 - 1


def history(item_ids: list[int], weight: float = 2.0, t0: float = 1_700_000_000.0) -> Query:
    events = [HistoryEvent(i, weight, t0 + n) for n, i in enumerate(item_ids)][::-1]
    return Query.of(None, events, now=t0 + len(item_ids))


class AlgorithmConformance:
    """The contract of ``engines.base.Algorithm``, as pytest tests."""

    algorithm: ClassVar[type[Algorithm]]
    config: ClassVar[dict[str, Any]] = {}
    #: False for non-personalised algorithms (popularity/trending)
    personalised: ClassVar[bool] = True
    #: False for algorithms whose recommend ignores users with long histories (cold start)
    serves_known_users: ClassVar[bool] = True

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls) -> TrainingData:
        return planted_data()

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, data: TrainingData) -> Algorithm:
        model = cls.algorithm(cls.config)
        model.fit(data)
        return model

    def query(self, k: int = 0, n: int = 3) -> Query:
        base = 1000 * (k + 1)
        return history([base, base + 1, base + 2][:n])

    def test_has_a_name_description_and_config_schema(self) -> None:
        assert self.algorithm.name and self.algorithm.name.isidentifier()
        assert self.algorithm.description
        assert self.algorithm.config_schema()["type"] == "object"

    def test_config_rejects_unknown_keys(self) -> None:
        with pytest.raises(ValueError):
            self.algorithm({"no_such_option_anywhere": 1})

    def test_fit_marks_the_model_fitted(self, model: Algorithm) -> None:
        assert model.fitted

    def test_results_are_ranked_known_unique_and_limited(
        self, model: Algorithm, data: TrainingData
    ) -> None:
        rec = rank(model, self.query(), 5)
        assert len(rec.ids) == len(rec.scores) <= 5
        assert len(rec.ids) > 0
        assert rec.ids.dtype.kind == "i"
        assert len(set(rec.ids.tolist())) == len(rec.ids)
        assert set(rec.ids.tolist()) <= set(data.item_ids.tolist())
        assert np.all(np.diff(rec.scores) <= 1e-6), "scores must be descending"
        assert np.all(np.isfinite(rec.scores))

    def test_exclude_and_candidates_are_honoured(
        self, model: Algorithm, data: TrainingData
    ) -> None:
        first = rank(model, self.query(), 5)
        again = rank(model, self.query(), 5, exclude=first.ids[:2])
        assert not set(first.ids[:2].tolist()) & set(again.ids.tolist())
        allowed = data.item_ids[::3]
        limited = rank(model, self.query(), 50, candidates=allowed)
        assert set(limited.ids.tolist()) <= set(allowed.tolist())

    def test_recommendations_stay_in_the_users_cluster(self, model: Algorithm) -> None:
        if not self.personalised:
            pytest.skip("not personalised")
        for k in range(3):
            rec = rank(
                model, self.query(k), 5, exclude=np.array([1000 * (k + 1) + j for j in range(3)])
            )
            clusters = [cluster_of(int(i)) for i in rec.ids]
            assert clusters and clusters.count(k) >= 0.8 * len(clusters), (k, rec.ids)

    def test_unknown_and_empty_histories_do_not_fail(self, model: Algorithm) -> None:
        rank(model, history([987654321]), 5)
        rank(model, Query(), 5)
        assert model.score_batch([]).shape == (0, len(model.item_ids))

    def test_scores_are_aligned_with_item_ids_and_batches_agree(self, model: Algorithm) -> None:
        queries = [self.query(0), Query(), history([987654321]), self.query(2, 1)]
        batch = model.score_batch(queries)
        assert batch.shape == (len(queries), len(model.item_ids))
        for row, query in enumerate(queries):
            one = model.score(query)
            if one is None:
                assert not np.isfinite(batch[row]).any(), "no answer must be a row of -inf"
                continue
            assert one.shape == (len(model.item_ids),)
            finite = np.isfinite(one)
            assert np.array_equal(finite, np.isfinite(batch[row]))
            np.testing.assert_allclose(one[finite], batch[row][finite], rtol=1e-4, atol=1e-5)

    def test_concurrent_requests_scored_together_get_their_own_answers(
        self, model: Algorithm
    ) -> None:
        """The server scores concurrent requests in one ``score_batch``: each request must
        get the answer it would have had alone."""
        queries = [self.query(0), Query(), self.query(1, 2), history([987654321])]
        queries += [self.query(k % 3, 1 + k % 3) for k in range(6)]
        sizes: list[int] = []

        async def together() -> list[np.ndarray | None]:
            batcher = ScoreBatcher(inline_items=0)  # big enough for a worker thread
            batcher.on_batch = lambda name, size: sizes.append(size)
            return await asyncio.gather(*(batcher.score(model, q) for q in queries))

        for query, got in zip(queries, asyncio.run(together()), strict=True):
            alone = model.score(query)
            if alone is None or not np.isfinite(alone).any():
                assert got is None or not np.isfinite(got).any()
                continue
            assert got is not None
            finite = np.isfinite(alone)
            assert np.array_equal(finite, np.isfinite(got))
            np.testing.assert_allclose(alone[finite], got[finite], rtol=1e-4, atol=1e-5)
        assert sizes == [len(queries)]

    def test_concurrent_similar_items_scored_together_get_their_own_answers(
        self, model: Algorithm
    ) -> None:
        """Concurrent ``similarItems`` requests go through one ``similar_batch``: each must
        get what ``similar`` gives its item alone."""
        positions = [0, len(model.item_ids) // 2, len(model.item_ids) - 1, 0]
        sizes: list[int] = []

        async def together() -> list[np.ndarray | None]:
            batcher = ScoreBatcher(inline_items=0)
            batcher.on_batch = lambda name, size: sizes.append(size)
            return await asyncio.gather(*(batcher.similar(model, p) for p in positions))

        for pos, got in zip(positions, asyncio.run(together()), strict=True):
            alone = model.similar(pos)
            if alone is None:
                assert got is None
                continue
            assert got is not None and got.shape == alone.shape
            finite = np.isfinite(alone)
            assert np.array_equal(finite, np.isfinite(got))
            np.testing.assert_allclose(alone[finite], got[finite], rtol=1e-4, atol=1e-5)
        assert sizes == [len(positions)]

    def test_save_and_load_give_the_same_answers(self, model: Algorithm) -> None:
        blob = model.save()
        assert isinstance(blob, bytes)
        clone = self.algorithm(self.config)
        clone.load(blob)
        a, b = rank(model, self.query(1), 5), rank(clone, self.query(1), 5)
        assert a.ids.tolist() == b.ids.tolist()
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)

    def test_fit_on_a_catalogue_without_events_is_harmless(self) -> None:
        content = [ItemContent(1, "thing", "a thing"), ItemContent(2, "thing", "another")]
        empty = TrainingData.from_events(
            np.array([], np.int64),
            np.array([], np.int64),
            np.array([], np.float32),
            np.array([]),
            content,
        )
        model = self.algorithm(self.config)
        model.fit(empty)
        assert model.fitted
        rec = rank(model, history([1]), 5, exclude=np.array([1]))
        assert set(rec.ids.tolist()) <= {2}
        nothing = TrainingData.from_events(
            np.array([], np.int64), np.array([], np.int64), np.array([], np.float32), np.array([])
        )
        self.algorithm(self.config).fit(nothing)

    def test_similar_items_never_return_the_item_itself(self, model: Algorithm) -> None:
        rec = rank_similar(model, 1000, 5)
        assert 1000 not in rec.ids.tolist()
        if len(rec.ids) and self.personalised:
            assert [cluster_of(int(i)) for i in rec.ids].count(0) >= 0.8 * len(rec.ids)
