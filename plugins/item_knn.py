"""Item co-occurrence ("also viewed/bought together"): cosine similarity between items'
user vectors, top neighbours kept per item. Dislikes in a history push neighbours down."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from engines import (
    Algorithm,
    AlgorithmConfig,
    ItemToItem,
    TrainingData,
    hookimpl,
    preference_matrix,
    top_per_row,
    training_field,
)

#: items whose similarity rows are computed at once (bounds the memory of a fit)
ITEMS_PER_BLOCK = 2048


class ItemKnnConfig(AlgorithmConfig):
    neighbours: int = training_field(100, ge=1, le=2000, description="Neighbours kept per item.")
    shrinkage: float = training_field(10.0, ge=0, description="Damps similarities of rare pairs.")
    half_life_days: float | None = training_field(None, gt=0, description="Time decay of events.")
    min_support: int = training_field(1, ge=1, description="Least co-occurring users for a pair.")


class ItemKnn(ItemToItem):
    name = "item_knn"
    description = "Item-to-item co-occurrence (cosine) neighbours: bought/viewed together."
    Config = ItemKnnConfig

    config: ItemKnnConfig

    def fit(self, data: TrainingData) -> None:
        c = self.config
        # without weights decayed to nothing: the float32 product of two such events would
        # underflow to 0 and drop out of the co-occurrence but not out of the support
        m = preference_matrix(data, c.half_life_days)
        m.data[m.data < 1e-18] = 0
        m.eliminate_zeros()
        binary = m.copy()
        binary.data[:] = 1.0
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=0)).ravel())
        norms[norms == 0] = 1.0
        # items × users, for row blocks of the item-item products: the full co-occurrence
        # matrix of a popular catalogue is far larger than the neighbour lists kept from it
        # (1M events: 2 GB at once), so it is built and pruned a block of items at a time
        m_t, binary_t = m.T.tocsr(), binary.T.tocsr()
        blocks = []
        for start in range(0, data.n_items, ITEMS_PER_BLOCK):
            stop = min(start + ITEMS_PER_BLOCK, data.n_items)
            cooc = (m_t[start:stop] @ m).tocsr()  # weighted co-occurrence
            support = (binary_t[start:stop] @ binary).tocsr()
            cooc.sort_indices()
            support.sort_indices()
            # m and binary share a sparsity pattern, so do their products: the data align
            assert np.array_equal(cooc.indptr, support.indptr)
            local = np.repeat(np.arange(stop - start), np.diff(cooc.indptr))
            rows, cols, sup = local + start, cooc.indices, support.data
            sims = cooc.data / (norms[rows] * norms[cols]) * (sup / (sup + c.shrinkage))
            keep = (rows != cols) & (sup >= c.min_support)
            block = sp.csr_matrix(
                (sims[keep], (local[keep], cols[keep])),
                shape=(stop - start, data.n_items),
                dtype=np.float32,
            )
            blocks.append(top_per_row(block, c.neighbours))
        self.weights = (
            sp.vstack(blocks, format="csr", dtype=np.float32)
            if blocks
            else sp.csr_matrix(np.zeros((0, 0), np.float32))
        )
        self.item_ids = data.item_ids.copy()
        self._prepare()
        self.fitted = True

    def half_life_days(self) -> float | None:
        return self.config.half_life_days


@hookimpl
def register_algorithms() -> list[type[Algorithm]]:
    return [ItemKnn]
