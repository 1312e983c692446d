"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): the item
× item weights that best rebuild each user's history from the rest of it, in closed form,

    B = I − P · diag(1 / diag P),   P = (XᵀX + λI)⁻¹,   diag B = 0,

over the same log-compressed preference matrix as the other algorithms. A dense items ×
items inverse (MovieLens' 9,742 items: 13 s on 2 cores, 1.5 GiB while fitting), so catalogues above
``max_items`` are not fitted (it then has no opinion and a blend leans on the others). Each
item keeps its ``keep`` largest weights by size, which scores a history as quickly as the
co-occurrence neighbours (on MovieLens validation, 200 kept cost 0.001–0.004 NDCG@10 of 0.20:
``bench/ease_validation.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from engines import (
    Algorithm,
    AlgorithmConfig,
    ItemToItem,
    TrainingData,
    hookimpl,
    preference_matrix,
    training_field,
)

#: rows handled at once after the inverse (bounds the temporary arrays)
BLOCK = 1024


class EaseConfig(AlgorithmConfig):
    l2: float = training_field(
        500.0, gt=0, description="Ridge strength λ: larger spreads weight over more items."
    )
    keep: int = training_field(200, ge=1, le=5000, description="Weights kept per item.")
    # bounded for any caller of modelTrain: the fit's memory grows as items² (MovieLens'
    # 9,742: 1.5 GiB; 15,000: ~3.6 GiB)
    max_items: int = training_field(
        10_000, ge=1, le=15_000, description="Largest catalogue fitted (memory grows as items²)."
    )


class Ease(ItemToItem):
    name = "ease"
    description = "EASE: closed-form item-to-item regression (catalogues up to max_items)."
    Config = EaseConfig

    config: EaseConfig

    def fit(self, data: TrainingData) -> None:
        n = data.n_items
        self.item_ids = data.item_ids.copy()
        self.skipped = n > self.config.max_items
        if self.skipped or n == 0:
            none = np.zeros(0, np.int64)
            self.weights = sp.csr_matrix(
                (np.zeros(0, np.float32), (none, none)), shape=(n, n), dtype=np.float32
            )
        else:
            self.weights = self._solve(preference_matrix(data, None))
        self._prepare()
        self.fitted = True

    def _solve(self, x: sp.csr_matrix) -> sp.csr_matrix:
        """The pruned weights, computed in one items × items float64 array (and blocks of
        rows): LAPACK works on it in place, as it is symmetric (its transpose is the
        column-major array LAPACK wants)."""
        gram = (x.T @ x).astype(np.float64).toarray()
        gram[np.diag_indices_from(gram)] += self.config.l2
        work = gram.T  # the same memory, column-major
        # the inverse of a positive definite matrix by its Cholesky factor: half the work
        # of a general inverse; LAPACK fills the upper triangle
        work, info = lapack.dpotrf(work, lower=False, overwrite_a=True, clean=True)
        if info == 0:
            work, info = lapack.dpotri(work, lower=False, overwrite_c=True)
        del gram  # the same memory as ``work`` where LAPACK could work in place
        if info != 0:
            raise np.linalg.LinAlgError(f"EASE: the regularised Gram matrix is singular ({info})")
        n = len(work)
        for start in range(0, n, BLOCK):  # mirror the upper triangle, a block at a time
            stop = min(start + BLOCK, n)
            work[stop:, start:stop] = work[start:stop, stop:].T
            block = work[start:stop, start:stop]
            block[...] = np.triu(block) + np.triu(block, 1).T
        diagonal = np.diag(work).copy()
        blocks = []
        for start in range(0, n, BLOCK):  # B = −P / diag P, zero diagonal, pruned
            rows = work[start : min(start + BLOCK, n)] / -diagonal[None, :]
            rows[np.arange(len(rows)), np.arange(start, start + len(rows))] = 0.0
            blocks.append(_largest_per_row(rows, self.config.keep))
        return sp.vstack(blocks, format="csr", dtype=np.float32)

    def report(self) -> dict[str, Any]:
        if getattr(self, "skipped", False):
            return {"skipped": f"{len(self.item_ids)} items > max_items {self.config.max_items}"}
        return {"weights_per_item": self.config.keep}


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
