"""The graph filter's item-item normalisation: GF-CF's by default, others on request."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from engines import preference_matrix
from engines.testing import history, planted_data
from plugins.collaborative import Collaborative

CONFIG = {"rank": 8, "autotune": False, "popularity_exponent": 0.0, "ideal_weight": 0.0,
          "sharpen": 0.0}


def item_item(
    pref: sp.csr_matrix, r: np.ndarray, history_exp: float, user_exp: float
) -> np.ndarray:
    """``r D_i^-a Rᵀ D_u^-2b R D_i^-1/2`` from its definition, densely."""
    dense = pref.toarray().astype(np.float64)
    du, di = dense.sum(1), dense.sum(0)
    with np.errstate(divide="ignore"):
        left = np.where(di > 0, di ** -history_exp, 0.0)
        users = np.where(du > 0, du ** (-2 * user_exp), 0.0)
        right = np.where(di > 0, di ** -0.5, 0.0)
    return ((r * left) @ dense.T @ np.diag(users) @ dense) * right


def test_the_item_item_part_follows_its_definition_for_any_normalisation():
    data = planted_data()
    pref = preference_matrix(data, None)
    query = history([1000, 1003, 2005])
    for history_exp, user_exp in ((0.5, 0.5), (0.7, 0.3), (0.2, 0.6)):
        model = Collaborative(Collaborative.Config(
            **CONFIG, history_exponent=history_exp, user_exponent=user_exp))
        model.fit(data)
        got = model.score(query)
        assert got is not None
        r = np.zeros(len(model.item_ids))
        positions = np.searchsorted(model.item_ids, [1000, 1003, 2005])
        r[positions] = 1.0  # equal weights: the scale cancels below
        want = item_item(pref, r, history_exp, user_exp)
        np.testing.assert_allclose(got / got.max(), want / want.max(), rtol=1e-4, atol=1e-6)


def test_sharpening_subtracts_the_square_of_the_item_item_filter():
    data = planted_data()
    pref = preference_matrix(data, None)
    query = history([1000, 1003, 2005])
    model = Collaborative(Collaborative.Config(**{**CONFIG, "sharpen": 0.75}))
    model.fit(data)
    got = model.score(query)
    assert got is not None
    r = np.zeros(len(model.item_ids))
    r[np.searchsorted(model.item_ids, [1000, 1003, 2005])] = 1.0
    linear = item_item(pref, r, 0.5, 0.5)  # r P, with P = D_i^-1/2 Rᵀ D_u^-1 R D_i^-1/2
    want = linear - 0.75 * item_item(pref, linear, 0.5, 0.5)
    np.testing.assert_allclose(got / np.abs(got).max(), want / np.abs(want).max(),
                               rtol=1e-4, atol=1e-6)


def test_full_sharpening_takes_the_popularity_direction_out():
    """P's top eigenvector, eigenvalue 1, is D_i^1/2 (the degrees): P - P² maps it to 0."""
    data = planted_data()
    for sharpen, kept in ((0.0, 1.0), (1.0, 0.0)):
        model = Collaborative(Collaborative.Config(**{**CONFIG, "sharpen": sharpen}))
        model.fit(data)
        popular = np.sqrt(model.item_degree)
        scores = model.graph_scores(sp.csr_matrix(popular[None, :]))[0]
        np.testing.assert_allclose(scores, kept * popular, atol=1e-3 * popular.max())


def test_the_low_rank_part_through_the_users_is_the_low_rank_part():
    """With few users and many items the low-rank part goes through the users (R̃ᵀ M R̃
    instead of VᵀV): the scores must be the definition's, ``β r D^-1/2 VᵀV D^1/2``."""
    config = {**CONFIG, "ideal_weight": 0.3}
    few_users = planted_data(users_per_cluster=10, items_per_cluster=100)  # 30 × 300
    model = Collaborative(config)
    model.fit(few_users)
    assert model.user_projection is not None  # the route under test is the one taken
    positions = np.searchsorted(model.item_ids, [1000, 1003, 2005])
    r = np.zeros(len(model.item_ids))
    r[positions] = 1.0  # equal weights: the scale cancels below
    got = model.score(history([1000, 1003, 2005]))
    assert got is not None
    pref = preference_matrix(few_users, None)
    di = np.asarray(pref.sum(0)).ravel().astype(np.float64)
    vt = model.vt.astype(np.float64)
    inv_sqrt = np.divide(1.0, np.sqrt(di), out=np.zeros_like(di), where=di > 0)
    low = 0.3 * ((r * inv_sqrt) @ vt.T @ vt) * np.sqrt(di)
    want = item_item(pref, r, 0.5, 0.5) + low
    np.testing.assert_allclose(got / got.max(), want / want.max(), rtol=1e-4, atol=1e-6)
    assert np.abs(low).max() > 0.1 * np.abs(want).max()  # the part under test counts
    # many users for the items: the low-rank product itself
    many = Collaborative(config)
    many.fit(planted_data())  # 90 × 60
    assert many.user_projection is None
