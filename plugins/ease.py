"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): the item
× item weights that best rebuild each user's history from the rest of it, in closed form,

    B = I − P · diag(1 / diag P),   P = (XᵀX + λI)⁻¹,   diag B = 0,

over the same log-compressed preference matrix as the other algorithms. A dense items ×
items inverse (MovieLens' 9,742 items: 13 s on 2 cores, 1.5 GiB while fitting), so a
catalogue above ``max_items`` is fitted on its ``max_items`` most used items (the others
have no opinion here, and a blend leans on its other members for them). Each
item keeps its ``keep`` largest weights by size, which scores a history as quickly as the
co-occurrence neighbours (on MovieLens validation, 200 kept cost 0.001–0.004 NDCG@10 of 0.20:
``bench/ease_validation.py``). Training chooses λ per tenant on a validation split of its
events (``autotune``): on validation MovieLens-small wants about half the default and a
10,000-place slice of Gowalla an eighth (``bench/ease_regularisation.py``), so no one fixed
value fits both.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from engines import (
    Algorithm,
    AlgorithmConfig,
    ItemToItem,
    Search,
    TrainingData,
    holdout_split,
    hookimpl,
    preference_matrix,
    ranking_metrics,
    training_field,
)

#: rows handled at once after the inverse (bounds the temporary arrays)
BLOCK = 1024
#: the automatic selection's steps from the configured ridge strength: halving while each
#: halving wins, else doubling while that wins (on validation, MovieLens-small wants about
#: half the default and a 10,000-place slice of Gowalla an eighth:
#: ``bench/ease_regularisation.py``)
L2_STEPS = (0.5, 2.0)


class EaseConfig(AlgorithmConfig):
    l2: float = training_field(
        500.0,
        gt=0,
        description="Ridge strength λ (where autotune starts): larger spreads weight over "
        "more items.",
    )
    dropout: float = training_field(
        0.0,
        ge=0,
        lt=0.95,
        description="EDLAE's emphasis (Steck, NeurIPS 2020): each item's own ridge also "
        "grows by dropout/(1-dropout) times its Gram diagonal.",
    )
    keep: int = training_field(200, ge=1, le=5000, description="Weights kept per item.")
    autotune: bool = training_field(
        True,
        description="Choose l2 on a validation split of the tenant's events at each training "
        "(a few trial fits stepping away from the setting).",
    )
    autotune_budget: float = training_field(
        4.0,
        ge=1.5,
        description="Training with the search takes about this many times one fit (a trial "
        "costs one fit: 4 lets the search halve λ three times).",
    )
    random_state: int = training_field(
        0, ge=0, le=2**32 - 1, description="Seed of the validation split."
    )
    # bounded for any caller of modelTrain: the fit's memory grows as items² (MovieLens'
    # 9,742: 1.5 GiB; 15,000: ~3.6 GiB)
    max_items: int = training_field(
        10_000,
        ge=1,
        le=15_000,
        description="Most items fitted: a larger catalogue's most used ones (memory grows "
        "as items²).",
    )


class Ease(ItemToItem):
    name = "ease"
    description = "EASE: closed-form item-to-item regression (over the max_items most used)."
    Config = EaseConfig

    config: EaseConfig

    def fit(self, data: TrainingData) -> None:
        n = data.n_items
        self.item_ids = data.item_ids.copy()
        self.tuning: dict[str, Any] = {}
        pref = preference_matrix(data, None).tocsr()
        # a catalogue over the limit: the regression over its most used items (the rest
        # has no opinion here; on Gowalla the 10,000 most visited of 40,981 places hold 58%
        # of the events, and a blend gains from them: ``bench/ease_head_gowalla.py``)
        used = np.bincount(pref.indices, minlength=n)  # users per item
        head = np.sort(np.argsort(-used, kind="stable")[: self.config.max_items])
        head = head[used[head] > 0]
        self.head_share = float(used[head].sum() / max(used.sum(), 1))
        self.fitted_items = len(head)
        if len(head) == 0:
            none = np.zeros(0, np.int64)
            self.weights = sp.csr_matrix(
                (np.zeros(0, np.float32), (none, none)), shape=(n, n), dtype=np.float32
            )
        else:
            x = pref[:, head].tocsr() if len(head) < n else pref
            if self.config.autotune:
                self._autotune(x)
            fitted = self._solve(x).tocoo()  # back into the whole catalogue's positions
            self.weights = sp.csr_matrix(
                (fitted.data, (head[fitted.row], head[fitted.col])), shape=(n, n)
            )
        self._prepare()
        self.fitted = True

    def _solve(self, x: sp.csr_matrix) -> sp.csr_matrix:
        """The pruned weights, a block of rows at a time (one items × items array in all).
        Single precision: on MovieLens 6 s instead of 16, scores within 10⁻⁵ of double
        precision's and the same top 20s; double only where single cannot factor."""
        try:
            inverse = ease_inverse(x, self.config.l2, self.config.dropout, np.float32)
        except np.linalg.LinAlgError:
            inverse = ease_inverse(x, self.config.l2, self.config.dropout, np.float64)
        diagonal = np.diag(inverse).copy()
        n = len(inverse)
        blocks = []
        for start in range(0, n, BLOCK):  # B = −P / diag P, zero diagonal, pruned
            rows = inverse[start : min(start + BLOCK, n)] / -diagonal[None, :]
            rows[np.arange(len(rows)), np.arange(start, start + len(rows))] = 0.0
            blocks.append(_largest_per_row(rows, self.config.keep))
        return sp.vstack(blocks, format="csr", dtype=np.float32)

    def _autotune(self, pref: sp.csr_matrix) -> None:
        """Score held-out items of a validation split (Recall@20, as ``collaborative``'s
        search) for ridge strengths stepping away from the configured one, each step kept
        only when it wins by two standard errors over the validation users; the last kept
        becomes this model's ``l2``."""
        c = self.config
        started = time.monotonic()
        split = holdout_split(pref, seed=c.random_state)
        if split is None:
            self.tuning = {"skipped": "too few users with two or more items"}
            return
        seen = split.train[split.users]

        def evaluate(settings: Mapping[str, Any]) -> np.ndarray:
            weights = ease_weights(split.train, settings["l2"], c.dropout, np.float32)
            recall, _ = ranking_metrics(np.asarray(seen @ weights), seen, split.held)
            return recall

        start = {"l2": c.l2}
        search = Search(evaluate, 0.0, start)
        incumbent = search.per_user(start)
        # a trial costs about what a fit does
        search.deadline = started + (c.autotune_budget - 1) * (time.monotonic() - started)
        for factor in L2_STEPS:  # halve while that wins; if the first halving lost, double
            l2 = c.l2
            while time.monotonic() < search.deadline:
                l2 *= factor
                trial = search.per_user({"l2": l2})
                if not search.better(trial, incumbent):
                    break
                incumbent, search.best = trial, {"l2": l2}
            if search.best is not start or time.monotonic() >= search.deadline:
                break
        best = search.best
        self.tuning = search.report(start, len(split.users), started)
        self.config = self.config.model_copy(update={"l2": float(best["l2"])})

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"weights_per_item": self.config.keep, "l2": self.config.l2}
        fitted = getattr(self, "fitted_items", len(self.item_ids))
        if len(self.item_ids) > self.config.max_items:  # not when a few items go unused
            out["items_fitted"] = (
                f"the {fitted} most used of {len(self.item_ids)} "
                f"({getattr(self, 'head_share', 1.0):.0%} of the events)"
            )
        if getattr(self, "tuning", None):
            out["autotune"] = self.tuning
        return out


def ease_inverse(
    x: sp.csr_matrix, l2: float, dropout: float, dtype: type[np.floating[Any]]
) -> np.ndarray:
    """P = (XᵀX + Λ)⁻¹ with Λ_ii = l2 + dropout / (1 − dropout) · (XᵀX)_ii, in one items ×
    items array: LAPACK works on it in place, as it is symmetric (its transpose is the
    column-major array LAPACK wants). float32 takes less than half float64's time."""
    gram = (x.T @ x).astype(dtype).toarray()
    diagonal = np.diag(gram).copy()
    gram[np.diag_indices_from(gram)] += l2 + dropout / (1.0 - dropout) * diagonal
    work = gram.T  # the same memory, column-major
    single = np.dtype(dtype) == np.float32
    potrf, potri = (lapack.spotrf, lapack.spotri) if single else (lapack.dpotrf, lapack.dpotri)
    # the inverse of a positive definite matrix by its Cholesky factor: half the work of a
    # general inverse; LAPACK fills the upper triangle
    work, info = potrf(work, lower=False, overwrite_a=True, clean=True)
    if info == 0:
        work, info = potri(work, lower=False, overwrite_c=True)
    del gram  # the same memory as ``work`` where LAPACK could work in place
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: the regularised Gram matrix is singular ({info})")
    n = len(work)
    for start in range(0, n, BLOCK):  # mirror the upper triangle, a block at a time
        stop = min(start + BLOCK, n)
        work[stop:, start:stop] = work[start:stop, stop:].T
        block = work[start:stop, start:stop]
        block[...] = np.triu(block) + np.triu(block, 1).T
    return np.asarray(work)


def ease_weights(
    x: sp.csr_matrix, l2: float, dropout: float, dtype: type[np.floating[Any]]
) -> np.ndarray:
    """All of B = I − P · diag(1 / diag P) with a zero diagonal, dense (in P's memory)."""
    weights = ease_inverse(x, l2, dropout, dtype)
    weights /= -np.diag(weights).copy()[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights


def _largest_per_row(rows: np.ndarray, keep: int) -> sp.csr_matrix:
    """The ``keep`` weights of largest size in each of ``rows``, as a sparse matrix."""
    n, width = rows.shape
    if keep >= width:
        return sp.csr_matrix(rows.astype(np.float32))
    cols = np.argpartition(-np.abs(rows), keep - 1, axis=1)[:, :keep]
    vals = np.take_along_axis(rows, cols, axis=1).astype(np.float32)
    at = np.repeat(np.arange(n), keep)
    out = sp.csr_matrix((vals.ravel(), (at, cols.ravel())), shape=(n, width), dtype=np.float32)
    out.eliminate_zeros()
    return out


@hookimpl
def register_algorithms() -> list[type[Algorithm]]:
    return [Ease]
