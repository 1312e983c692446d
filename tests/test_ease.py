"""EASE's weights are Steck's closed form, pruned to each item's largest; its ridge strength
is chosen on the tenant's own data; a catalogue over its limit is not fitted (no opinion)
rather than exhausting memory."""

from __future__ import annotations

import numpy as np
import pytest

from engines import TrainingData, preference_matrix
from engines.data import ItemContent
from engines.testing import history, planted_data
from plugins.ease import Ease

FIXED = {"autotune": False}


def closed_form(data, l2: float, dropout: float = 0.0) -> np.ndarray:
    """B = I − P·diag(1/diag P), P = (XᵀX + Λ)⁻¹, written out from the papers: Λ = λI
    (EASE), plus dropout/(1 − dropout)·diag(XᵀX) (EDLAE's emphasis)."""
    x = preference_matrix(data, None).toarray().astype(np.float64)
    gram = x.T @ x
    ridge = l2 * np.eye(len(gram)) + dropout / (1 - dropout) * np.diag(np.diag(gram))
    p = np.linalg.inv(gram + ridge)
    return np.eye(len(p)) - p / np.diag(p)[None, :]


@pytest.mark.parametrize("dropout", [0.0, 0.25])
def test_the_weights_are_the_closed_form(dropout):
    data = planted_data()
    model = Ease({**FIXED, "l2": 3.0, "dropout": dropout, "keep": data.n_items})
    model.fit(data)
    want = closed_form(data, 3.0, dropout)
    assert np.allclose(np.diag(want), 0.0, atol=1e-9)  # the constraint diag B = 0
    assert np.allclose(model.weights.toarray(), want, atol=1e-5)
    assert not np.allclose(want, closed_form(data, 3.0, dropout + 0.25), atol=1e-3)
    assert "items_fitted" not in model.report()  # the whole catalogue is within the limit


def sequels(n_users: int = 1000, n_pairs: int = 150, per_user: int = 4, seed: int = 0):
    """Items come in pairs (a film and its sequel), pairs with power-law popularity; a user
    picks four pairs and most often takes both halves. Raw ``(users, items)`` arrays."""
    rng = np.random.default_rng(seed)
    popularity = rng.pareto(1.0, n_pairs) + 1
    popularity /= popularity.sum()
    users, items = [], []
    for u in range(n_users):
        for pair in rng.choice(n_pairs, per_user, replace=False, p=popularity):
            both = rng.random() < 0.8
            halves = [2 * pair, 2 * pair + 1] if both else [2 * pair + rng.integers(2)]
            users += [u + 1] * len(halves)
            items += [int(h) + 1 for h in halves]
    return np.array(users), np.array(items)


def test_training_chooses_the_ridge_strength_that_ranks_unseen_items_better():
    """Where the default λ (chosen on MovieLens) over-smooths, so that popular pairs crowd
    out the sequel of what a user watched, the search moves it, records why, and the chosen
    model finds more of a separate holdout than the default."""
    users, items = sequels()
    rng = np.random.default_rng(1)
    test = np.zeros(len(users), bool)
    for u in np.unique(users):  # one event of each user, never seen by the training
        test[rng.choice(np.flatnonzero(users == u))] = True
    n = int((~test).sum())
    catalogue = [ItemContent(int(i)) for i in np.unique(items)]
    train = TrainingData.from_events(
        users[~test], items[~test], np.ones(n, np.float32), np.full(n, 1.7e9), catalogue
    )
    tuned = Ease({"autotune_budget": 1000.0})  # no busy machine stops this search early
    tuned.fit(train)
    default = Ease(FIXED)
    default.fit(train)
    report = tuned.report()["autotune"]
    assert tuned.config.l2 == report["chosen"]["l2"] <= 500 / 4  # two halvings at least
    assert report["validation_recall@20"] > report["validation_recall@20_before"]
    assert "autotune" not in default.report() and default.config.l2 == 500

    x = preference_matrix(train, None)
    position = {int(pk): k for k, pk in enumerate(train.item_ids)}

    def found(model: Ease) -> int:  # held-out items in each user's top 10
        scores = (x @ model.weights).toarray()
        scores[x.nonzero()] = -np.inf
        top = np.argsort(-scores, axis=1)[:, :10]
        rows = np.searchsorted(train.user_ids, users[test])
        return sum(position[int(i)] in top[r] for r, i in zip(rows, items[test], strict=True))

    assert found(tuned) > 1.2 * found(default)


def test_each_item_keeps_its_largest_weights():
    data = planted_data()
    model = Ease({**FIXED, "l2": 3.0, "keep": 7})
    model.fit(data)
    want = closed_form(data, 3.0)
    kept = model.weights.toarray()
    for row in range(data.n_items):
        nonzero = np.flatnonzero(kept[row])
        assert len(nonzero) == 7
        assert np.allclose(kept[row, nonzero], want[row, nonzero], atol=1e-5)
        smallest_kept = np.abs(want[row, nonzero]).min()
        dropped = np.setdiff1d(np.arange(data.n_items), nonzero)
        assert np.abs(want[row, dropped]).max() <= smallest_kept + 1e-6


def test_a_catalogue_over_the_limit_is_fitted_on_its_most_used_items():
    """Memory grows as items², so a large catalogue's regression covers its most used
    items: the same weights as a fit on those items alone, no opinion on the others."""
    data = planted_data()
    used = np.bincount(data.event_items, minlength=data.n_items)
    head = np.sort(np.argsort(-used, kind="stable")[:25])
    model = Ease({**FIXED, "max_items": 25, "keep": 25})
    model.fit(data)
    assert "the 25 most used of 60" in model.report()["items_fitted"]
    weights = model.weights.toarray()
    tail = np.setdiff1d(np.arange(data.n_items), head)
    assert not weights[tail].any() and not weights[:, tail].any()
    x = preference_matrix(data, None)[:, head].toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + 500 * np.eye(len(head)))
    want = np.eye(len(p)) - p / np.diag(p)[None, :]
    assert np.allclose(weights[np.ix_(head, head)], want, atol=1e-5)
    # a history of head items is answered, and only with head items
    ids = data.item_ids
    scores = model.score(history([int(ids[head[0]]), int(ids[head[1]])]))
    assert scores is not None and np.isfinite(scores[head]).any()
    assert not np.isfinite(scores[tail]).any()
    # a history of tail items only: no opinion
    assert model.score(history([int(ids[tail[0]]), int(ids[tail[1]])])) is None


def test_a_blend_ranks_items_outside_eases_head_by_its_other_members():
    """On a large catalogue the default hybrid still answers for every item, from its
    other members where EASE has no opinion."""
    from engines.evaluation import evaluator as evaluation
    from plugins.item_knn import ItemKnn
    from tests.test_evaluation import planted_events

    split = evaluation.random_holdout(planted_events(), 0.3, seed=2)
    results = {r.name: r for r in evaluation.evaluate(
        {"item_knn": ItemKnn(), "ease": Ease({"max_items": 1})}, split, k=5,
        blends={"mix": {"item_knn": 1.0, "ease": 1.25}})}
    assert results["ease"].ndcg == 0.0  # one item: nothing to learn from another
    assert results["mix"].ndcg == results["item_knn"].ndcg > 0
