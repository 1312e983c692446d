"""Collaborative filtering from implicit feedback, with request-time fold-in: a user's newest
events count in the next request, without retraining.

Two models, chosen by ``method`` (a training option):

- ``graph_filter`` (default): a spectral graph filter on the user-item graph (after
  GF-CF, Shen et al. 2021). With R̃ = D_u^-1/2 R D_i^-1/2, a user's history r scores items
  by ``r R̃ᵀR̃  +  β · r D_i^-1/2 VᵀV D_i^1/2`` (a normalised item-item filter plus an ideal
  low-pass filter on the top ``rank`` singular vectors V of R̃), times ``deg_i^γ`` to tune
  the popularity penalty. There is no per-user state, so fold-in is exact.
- ``als``: implicit-feedback ALS matrix factorisation (``implicit``), with the ALS user step
  solved at request time from the history.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from threadpoolctl import threadpool_limits

from engines import (
    Algorithm,
    AlgorithmConfig,
    Query,
    Scores,
    Search,
    TrainingData,
    compress,
    history_arrays,
    history_matrix,
    holdout_split,
    hookimpl,
    preference_matrix,
    ranking_metrics,
    training_field,
)


class CollaborativeConfig(AlgorithmConfig):
    method: Literal["graph_filter", "als"] = training_field(
        "graph_filter", description="graph_filter (spectral, default) or als."
    )
    rank: int = training_field(640, ge=1, le=2048, description="graph_filter: singular vectors.")
    svd: Literal["randomized", "exact"] = training_field(
        "randomized", description="graph_filter: randomized (fast) or exact (Lanczos) SVD."
    )
    svd_iterations: int = training_field(
        5, ge=0, le=50, description="graph_filter: power iterations of the randomized SVD."
    )
    ideal_weight: float = Field(0.1, ge=0, description="graph_filter: weight of the low-rank part.")
    popularity_exponent: float = Field(
        0.15, ge=-1, le=1, description="graph_filter: score × degree^this (popularity penalty)."
    )
    sharpen: float = Field(
        0.75,
        ge=0,
        le=2,
        description="graph_filter: the item-item part is P - sharpen·P² (P: the normalised "
        "item-item graph), which takes the popularity direction out of it, as BSPM's "
        "sharpening does; 0: GF-CF's linear filter.",
    )
    history_exponent: float = Field(
        0.5,
        ge=0,
        le=1,
        description="graph_filter: the item-item part weighs a history item by "
        "degree^-this (0.5: GF-CF's normalisation; more discounts popular history items). "
        "Not searched by autotune: see docs/benchmarks.md.",
    )
    user_exponent: float = Field(
        0.5,
        ge=0,
        le=1,
        description="graph_filter: the item-item part weighs a co-user by degree^-2·this "
        "(0.5: GF-CF's normalisation; less lets active users count more). Not searched by "
        "autotune: see docs/benchmarks.md.",
    )
    factors: int = training_field(64, ge=2, le=1024, description="als: latent dimensions.")
    regularization: float = training_field(0.5, ge=0, description="als: L2 penalty.")
    iterations: int = training_field(15, ge=1, le=200, description="als: sweeps.")
    alpha: float = training_field(2.0, gt=0, description="als: confidence per unit of weight.")
    confidence: Literal["linear", "log"] = training_field(
        "log", description="als: confidence alpha*w or alpha*log1p(w)."
    )
    autotune: bool = training_field(
        True,
        description="graph_filter: choose rank, ideal_weight, popularity_exponent and sharpen on a "
        "validation split of the tenant's events at each training.",
    )
    autotune_budget: float = training_field(
        3.0,
        ge=1.5,
        description="graph_filter: training with the search takes about this many times "
        "one fit, at most.",
    )
    half_life_days: float | None = training_field(
        None, gt=0, description="Age at which an event counts half; None: no time decay."
    )
    random_state: int = training_field(42, ge=0, le=2**32 - 1, description="Seed.")


#: the values the automatic selection tries (GF-CF's own settings among them: β 0.3, no
#: popularity exponent)
POPULARITY_EXPONENTS = (-0.2, -0.1, 0.0, 0.1, 0.15, 0.2, 0.3)
IDEAL_WEIGHTS = (0.0, 0.03, 0.1, 0.3, 1.0)
SHARPENINGS = (0.0, 0.25, 0.5, 0.75, 1.0)

#: most users for which the low-rank part may go through the users (an users² array)
MAX_USER_SIDE = 2000

#: largest dense (recommended items × users) array an explanation builds
DENSE_EXPLAIN_CELLS = 4_000_000


def top_right_singular_vectors(
    a: sp.csr_matrix,
    k: int,
    *,
    iterations: int,
    start: np.ndarray | None = None,
    oversamples: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Vᵀ (k × columns, float32) of ``a``'s top ``k`` singular vectors, by randomized
    subspace iteration (Halko, Martinsson and Tropp, 2011).

    ``start`` (rows: the singular vectors of a nearly equal matrix, as a validation split
    has) replaces the random start, so one iteration does what five do from random (on
    Gowalla: a larger captured spectrum in a third of the time). The final small SVD is
    taken through the eigenvectors of the (k+p)² Gram matrix instead of an SVD of the
    (k+p) × columns one, unless the spectrum is too flat at the tail for that."""
    import scipy.linalg as la

    p = oversamples if oversamples is not None else max(10, k // 10)
    width = min(k + p, min(a.shape))
    rng = np.random.default_rng(seed)
    have = 0 if start is None else min(len(start), width)
    omega = rng.standard_normal((a.shape[1], width)).astype(np.float32)
    if have and start is not None:
        omega[:, :have] = start[:have].T
    at = a.T.tocsr()
    q = np.asarray(a @ omega)
    for _ in range(iterations):
        q = la.lu(q, permute_l=True, check_finite=False)[0]
        z = la.lu(np.asarray(at @ q), permute_l=True, check_finite=False)[0]
        q = np.asarray(a @ z)
    q = la.qr(q, mode="economic", check_finite=False)[0]
    b = np.ascontiguousarray(np.asarray(at @ q).T)  # (k+p) × columns
    values, vectors = np.linalg.eigh((b @ b.T).astype(np.float64))
    order = np.argsort(-values)[:k]
    s = np.sqrt(np.maximum(values[order], 0.0))
    if not len(s) or s[-1] <= 1e-2 * s[0]:  # Gram squares the spread: exact SVD instead
        vt = la.svd(b, full_matrices=False, check_finite=False)[2][:k]
    else:
        vt = (vectors[:, order].T.astype(np.float32) @ b) / s[:, None].astype(np.float32)
    return np.ascontiguousarray(vt, dtype=np.float32)


def _inv_sqrt(x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x, dtype=np.float64)
    np.divide(1.0, np.sqrt(x), out=out, where=x > 0)
    return out


class Collaborative(Algorithm):
    name = "collaborative"
    description = "Collaborative filtering (spectral graph filter or ALS) with real-time fold-in."
    Config = CollaborativeConfig

    config: CollaborativeConfig
    #: singular vectors of a nearly equal matrix to start the next SVD from (see ``fit``)
    _start: np.ndarray | None = None

    # --- training -------------------------------------------------------------------------
    def _preference(self, data: TrainingData) -> sp.csr_matrix:
        return preference_matrix(data, self.config.half_life_days)

    def fit(self, data: TrainingData) -> None:
        self.item_ids = data.item_ids.copy()
        pref = self._preference(data)
        self.tuning: dict[str, Any] = {}
        with threadpool_limits(1, "blas"):
            if self.config.method == "als":
                self._fit_als(pref)
            else:
                if self.config.autotune and self._autotune(pref):
                    # the validation split differs from ``pref`` in a few users' rows, so
                    # its singular vectors are an excellent start for the full fit's
                    self._start = self.vt
                self._fit_graph_filter(pref)
        self.fitted = True

    def untrained_copy(self) -> Self:
        fresh = super().untrained_copy()
        if self.config.method == "graph_filter":
            # refitted on nearly the same data (a validation split): start from these
            fresh._start = getattr(self, "vt", None)
        return fresh

    def report(self) -> dict[str, Any]:
        return {"autotune": self.tuning} if getattr(self, "tuning", None) else {}

    # --- choosing the settings on the tenant's data ---------------------------------------
    def _autotune(self, pref: sp.csr_matrix) -> bool:
        """Fit on a validation split of ``pref``, then search rank (a prefix of the fitted
        singular vectors), the low-rank weight, the popularity exponent and the sharpening
        by Recall@20 of the held-out items; the winners become this model's config."""
        c = self.config
        started = time.monotonic()
        split = holdout_split(pref, seed=c.random_state)
        if split is None:
            self.tuning = {"skipped": "too few users with two or more items"}
            return False
        self._fit_graph_filter(split.train, to_serve=False)
        one_fit = time.monotonic() - started
        seen = split.train[split.users]
        # sparse all the way: a dense (validation users × all users) step would not fit
        # for millions of users; the result is bounded by the split's ``max_cells``
        through = self._through_users(seen, c.history_exponent, c.user_exponent)
        item_item = np.ascontiguousarray((through @ self.norm).toarray(), np.float32)
        squared = self._once_more(item_item)
        low = self._spectral(seen)
        ranks = sorted({max(1, len(self.vt) // d) for d in (8, 4, 2, 1)})
        if not len(self.vt):
            ranks = [0]
        cached: dict[int, np.ndarray] = {}

        def low_rank(k: int) -> np.ndarray:
            if k not in cached:
                cached.clear()  # one (users × items) array at a time
                part = low[:, :k] @ self.vt[:k] if k else np.zeros_like(item_item)
                cached[k] = part * self.out_scale[None, :]
            return cached[k]

        def evaluate(settings: Mapping[str, Any]) -> np.ndarray:
            scores = item_item - settings["sharpen"] * squared
            scores += settings["ideal_weight"] * low_rank(settings["rank"])
            scores *= self._boost(settings["popularity_exponent"])[None, :]
            recall, _ = ranking_metrics(scores, seen, split.held, overwrite=True)
            return recall

        start = {
            "rank": len(self.vt),
            "ideal_weight": c.ideal_weight,
            "popularity_exponent": c.popularity_exponent,
            "sharpen": c.sharpen,
        }
        search = Search(evaluate, started + (c.autotune_budget - 1) * one_fit, start)
        best = search.run(
            {
                "popularity_exponent": POPULARITY_EXPONENTS,
                "ideal_weight": IDEAL_WEIGHTS,
                "rank": ranks,
                "sharpen": SHARPENINGS,
            }
        )
        self.tuning = search.report(start, len(split.users), started)
        self.config = self.config.model_copy(
            update={
                "rank": max(1, int(best["rank"])) if best["rank"] else c.rank,
                "ideal_weight": float(best["ideal_weight"]) if best["rank"] else 0.0,
                "popularity_exponent": float(best["popularity_exponent"]),
                "sharpen": float(best["sharpen"]),
            }
        )
        return True

    def _fit_graph_filter(self, pref: sp.csr_matrix, *, to_serve: bool = True) -> None:
        """The filter's arrays for ``pref``; ``to_serve`` False: for the search, which
        scores through the singular vectors directly and needs no user-side route."""
        du = np.asarray(pref.sum(axis=1)).ravel()
        di = np.asarray(pref.sum(axis=0)).ravel()
        norm = (sp.diags(_inv_sqrt(du)) @ pref @ sp.diags(_inv_sqrt(di))).astype(np.float32)
        self.norm = norm.tocsr()
        self.item_degree = di.astype(np.float32)
        self.user_degree = du.astype(np.float32)
        k = min(self.config.rank, min(norm.shape) - 1)
        if k < 1 or norm.nnz == 0:
            self.vt = np.zeros((0, norm.shape[1]), np.float32)
        elif min(norm.shape) <= 1000:
            self.vt = np.linalg.svd(norm.toarray(), full_matrices=False)[2][:k]
        elif self.config.svd == "exact":
            from scipy.sparse.linalg import svds

            self.vt = svds(norm, k=k, random_state=self.config.random_state)[2]
        else:
            start = self._start[:k] if self._start is not None else None
            if start is not None and start.shape[1] != norm.shape[1]:
                start = None
            self.vt = top_right_singular_vectors(
                norm,
                k,
                iterations=min(1, self.config.svd_iterations)
                if start is not None
                else self.config.svd_iterations,
                start=start,
                seed=self.config.random_state,
            )
        self._start = None
        self.vt = np.ascontiguousarray(self.vt, dtype=np.float32)
        self._prepare(to_serve)

    def _fit_als(self, pref: sp.csr_matrix) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        c = self.config
        m = pref.copy()
        m.data = self._confidence(np.expm1(m.data))
        if m.nnz:
            model = AlternatingLeastSquares(
                factors=c.factors,
                regularization=c.regularization,
                iterations=c.iterations,
                random_state=c.random_state,
            )
            model.fit(m, show_progress=False)
            self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        else:
            self.item_factors = np.zeros((m.shape[1], c.factors), dtype=np.float32)
        self._prepare()

    def _confidence(self, values: np.ndarray) -> np.ndarray:
        c = self.config
        out = c.alpha * (np.log1p(values) if c.confidence == "log" else values)
        return out.astype(np.float32)

    def _prepare(self, to_serve: bool = True) -> None:
        if self.config.method == "als":
            y = self.item_factors
            self.gram = (y.T @ y).astype(np.float64)  # YᵀY, shared by every fold-in
        else:
            self.norm_t = self.norm.T.tocsr()
            d = self.item_degree.astype(np.float64)
            self.in_scale = _inv_sqrt(d).astype(np.float32)
            self.out_scale = np.sqrt(d).astype(np.float32)
            self.vt_t = np.ascontiguousarray(self.vt.T)  # a transposed view would be copied
            self.user_projection = self._user_side_projection() if to_serve else None
            self.trained_exponent = self.config.popularity_exponent
            self.boost = self._boost(self.trained_exponent)

    def _user_side_projection(self) -> np.ndarray | None:
        """M (users × users) with VᵀV = R̃ᵀ M R̃, where that is cheaper per history than
        the low-rank product (a tenant with few users and many items: MovieLens-small's
        610 × 9,742 at rank 609 streams 23 MB of Vᵀ per batch, M is 3 MB and R̃ 1 MB).
        Vᵀ's rows lie in R̃'s row space (an SVD of R̃), so Vᵀ = AᵀR̃ with A = (R̃R̃ᵀ)⁺R̃V
        and M = AAᵀ; None when another route is cheaper or A does not reproduce Vᵀ."""
        n_users, n_items = self.norm.shape
        rank = len(self.vt)
        cheaper = n_users * n_users + self.norm.nnz < rank * n_items
        if not rank or n_users > MAX_USER_SIDE or not cheaper:
            return None
        norm = self.norm.astype(np.float64)
        gram = (norm @ norm.T).toarray()
        a = np.linalg.pinv(gram, hermitian=True) @ (norm @ self.vt.T.astype(np.float64))
        rebuilt = np.asarray(norm.T @ a)  # items × rank: must be Vᵀ's transpose
        if not np.allclose(rebuilt, self.vt.T, atol=1e-4):
            return None
        return np.ascontiguousarray(a @ a.T)

    # --- scoring --------------------------------------------------------------------------
    def graph_scores(self, r: sp.csr_matrix) -> np.ndarray:
        """Scores of the graph filter for compressed history rows ``r`` (users × items)."""
        c = self.config
        # (r R̃ᵀ) is sparse and small; R̃ᵀ @ dense runs as one sparse-dense product
        through_users = self._through_users(r, c.history_exponent, c.user_exponent).toarray()
        scores = np.ascontiguousarray((self.norm_t @ through_users.T).T, dtype=np.float32)
        if c.sharpen:
            scores -= c.sharpen * self._once_more(scores)
        if len(self.vt) and c.ideal_weight:
            part: np.ndarray
            if self.user_projection is not None:  # r D^-1/2 R̃ᵀ M R̃, as two sparse products
                users = sp.csr_matrix(r.multiply(self.in_scale[None, :])) @ self.norm_t
                weighted = c.ideal_weight * np.asarray(users @ self.user_projection)
                part = np.asarray(self.norm_t @ weighted.T, dtype=np.float32).T
            else:
                part = (c.ideal_weight * self._spectral(r)) @ self.vt  # weight on the small side
            part *= self.out_scale[None, :]
            scores += part
        if c.popularity_exponent:
            # the trained exponent's boost is precomputed; a request that overrides it pays
            # for its own (nothing per request is cached on the shared model)
            boost = self.boost
            if c.popularity_exponent != self.trained_exponent:
                boost = self._boost(c.popularity_exponent)
            scores *= boost[None, :]
        return scores

    def _once_more(self, scores: np.ndarray) -> np.ndarray:
        """``scores · P`` for dense rows (P = R̃ᵀR̃): the square of the item-item filter
        costs two sparse-dense products, never the items × items matrix."""
        through_users = self.norm @ scores.T  # users × rows
        return np.ascontiguousarray((self.norm_t @ through_users).T, dtype=np.float32)

    def _through_users(self, r: sp.csr_matrix, history: float, user: float) -> sp.csr_matrix:
        """``r D_i^-history Rᵀ D_u^-2·user`` without R's item side (with R = D_u^1/2 R̃
        D_i^1/2 it is ``(r D_i^(1/2-history)) R̃ᵀ D_u^(1-2·user)``); both 0.5 give GF-CF's
        ``r R̃ᵀ``."""
        if history != 0.5:
            r = sp.csr_matrix(r.multiply(self._degree_power(self.item_degree, 0.5 - history)))
        through = r @ self.norm_t
        if user != 0.5:
            through = sp.csr_matrix(
                through.multiply(self._degree_power(self.user_degree, 1.0 - 2.0 * user))
            )
        return through

    @staticmethod
    def _degree_power(degree: np.ndarray, exponent: float) -> np.ndarray:
        """``degree^exponent`` as a row to scale by (0 where the degree is 0)."""
        out = np.zeros(len(degree), np.float32)
        np.power(degree, exponent, out=out, where=degree > 0)
        return out[None, :]

    def _spectral(self, r: sp.csr_matrix) -> np.ndarray:
        """History rows in the basis of the top singular vectors: ``r D_i^-1/2 Vᵀ``."""
        return np.asarray(sp.csr_matrix(r.multiply(self.in_scale[None, :])) @ self.vt_t)

    def _boost(self, exponent: float) -> np.ndarray:
        return np.power(np.maximum(self.item_degree, 1e-9), exponent).astype(np.float32)

    def _fold_in(self, pos: np.ndarray, conf: np.ndarray) -> np.ndarray:
        """ALS: least-squares user factors from confidences on positions (the user step)."""
        y = self.item_factors[pos].astype(np.float64)
        conf = conf.astype(np.float64)
        a = self.gram + (y.T * (conf - 1.0)) @ y
        a[np.diag_indices_from(a)] += self.config.regularization
        return np.linalg.solve(a, (y * conf[:, None]).sum(axis=0)).astype(np.float32)

    def score(self, query: Query) -> Scores | None:
        pos, w = history_arrays(query, self.item_ids, self.config.half_life_days)
        keep = w > 0
        if not keep.any():
            return None
        if self.config.method == "als":
            return self.item_factors @ self._fold_in(pos[keep], self._confidence(w[keep]))
        row = sp.csr_matrix(
            (w[keep], (np.zeros(keep.sum(), np.int64), pos[keep])), shape=(1, len(self.item_ids))
        )
        return self.graph_scores(compress(row))[0]

    def score_batch(self, queries: Sequence[Query]) -> np.ndarray:
        r = compress(history_matrix(queries, self.item_ids, self.config.half_life_days))
        if self.config.method == "als":
            out = np.full((len(queries), len(self.item_ids)), -np.inf, np.float32)
            for n in range(r.shape[0]):
                lo, hi = r.indptr[n], r.indptr[n + 1]
                if hi > lo:
                    conf = self._confidence(np.expm1(r.data[lo:hi]))
                    out[n] = self.item_factors @ self._fold_in(r.indices[lo:hi], conf)
            return out
        scores = self.graph_scores(r)
        scores[np.diff(r.indptr) == 0] = -np.inf  # no positive history: no answer
        return scores

    def explain(self, query: Query, positions: np.ndarray) -> np.ndarray | None:
        """For each recommended item, the liked history item most similar to it."""
        pos, w = history_arrays(query, self.item_ids)
        liked = pos[w > 0]
        if not len(liked):
            return None
        if self.config.method == "als":
            sims = self.item_factors[positions] @ self.item_factors[liked].T
        else:
            # rows of R̃ᵀ are items (row slices of CSR are cheap); the recommended rows go
            # dense, so one sparse-dense product does the rest -- over all users while that
            # stays small, else over the users the liked items touch (a bounded array)
            history = self.norm_t[liked]
            recommended = self.norm_t[positions]
            if len(positions) * history.shape[1] > DENSE_EXPLAIN_CELLS:
                users = np.unique(history.indices)
                history, recommended = history[:, users], recommended[:, users]
            sims = np.asarray(history @ recommended.toarray().T).T
        return self.item_ids[liked[sims.argmax(axis=1)]]

    def similar(self, position: int) -> Scores | None:
        if self.config.method == "als":
            norms = np.linalg.norm(self.item_factors, axis=1)
            norms[norms == 0] = 1.0
            f = self.item_factors
            return ((f @ f[position]) / (norms * norms[position])).astype(np.float32)
        # float32: a float64 row would upcast the whole model on every call
        one = sp.csr_matrix(
            (np.ones(1, np.float32), (np.zeros(1, np.int64), np.array([position], np.int64))),
            shape=(1, len(self.item_ids)),
        )
        return self.graph_scores(one)[0]

    def similar_batch(self, positions: Sequence[int]) -> list[Scores | None]:
        if self.config.method == "als":
            return super().similar_batch(positions)
        # one row per item: one pass over the low-rank factors for all of them
        n = len(positions)
        rows = sp.csr_matrix(
            (np.ones(n, np.float32), (np.arange(n), np.asarray(positions, np.int64))),
            shape=(n, len(self.item_ids)),
        )
        return list(self.graph_scores(rows))

    # --- persistence ----------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        if self.config.method == "als":
            return {"item_ids": self.item_ids, "item_factors": self.item_factors}
        n = self.norm
        return {
            "item_ids": self.item_ids,
            "data": n.data,
            "indices": n.indices,
            "indptr": n.indptr,
            "shape": np.array(n.shape),
            "vt": self.vt,
            "item_degree": self.item_degree,
            "user_degree": self.user_degree,
        }

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.item_ids = arrays["item_ids"]
        if self.config.method == "als":
            self.item_factors = arrays["item_factors"]
        else:
            self.norm = sp.csr_matrix(
                (arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(arrays["shape"])
            )
            self.vt = arrays["vt"]
            self.item_degree = arrays["item_degree"]
            # saved before user_exponent existed: GF-CF's 0.5 needs no user degrees
            self.user_degree = arrays.get("user_degree", np.ones(self.norm.shape[0], np.float32))
        self._prepare()


@hookimpl
def register_algorithms() -> list[type[Algorithm]]:
    return [Collaborative]
