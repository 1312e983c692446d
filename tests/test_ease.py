"""EASE's weights are Steck's closed form, pruned to each item's largest; a catalogue over
its limit is not fitted (no opinion) rather than exhausting memory."""

from __future__ import annotations

import numpy as np

from engines import preference_matrix
from engines.testing import history, planted_data
from plugins.ease import Ease


def closed_form(data, l2: float) -> np.ndarray:
    """B = I − P·diag(1/diag P), P = (XᵀX + λI)⁻¹, written out from the paper."""
    x = preference_matrix(data, None).toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    return np.eye(len(p)) - p / np.diag(p)[None, :]


def test_the_weights_are_the_closed_form():
    data = planted_data()
    model = Ease({"l2": 3.0, "keep": data.n_items})
    model.fit(data)
    want = closed_form(data, 3.0)
    assert np.allclose(np.diag(want), 0.0, atol=1e-9)  # the constraint diag B = 0
    assert np.allclose(model.weights.toarray(), want, atol=1e-5)


def test_each_item_keeps_its_largest_weights():
    data = planted_data()
    model = Ease({"l2": 3.0, "keep": 7})
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


def test_a_catalogue_over_the_limit_is_not_fitted_and_has_no_opinion():
    data = planted_data()
    model = Ease({"max_items": data.n_items - 1})
    model.fit(data)
    assert "skipped" in model.report()
    query = history([1000, 1001, 1002])
    assert model.score(query) is None
    assert np.isneginf(model.score_batch([query])).all()
    fitted = Ease({"max_items": data.n_items})
    fitted.fit(data)
    assert fitted.score(query) is not None


def test_a_blend_whose_ease_is_over_the_limit_ranks_as_its_other_members():
    """On a large catalogue the default hybrid still answers, from its other members."""
    from engines.evaluation import evaluator as evaluation
    from plugins.item_knn import ItemKnn
    from tests.test_evaluation import planted_events

    split = evaluation.random_holdout(planted_events(), 0.3, seed=2)
    results = {r.name: r for r in evaluation.evaluate(
        {"item_knn": ItemKnn(), "ease": Ease({"max_items": 1})}, split, k=5,
        blends={"mix": {"item_knn": 1.0, "ease": 1.25}})}
    assert results["ease"].ndcg == 0.0
    assert results["mix"].ndcg == results["item_knn"].ndcg > 0
