"""Search retrievers in one round trip: full text (weighted ``tsvector``), trigram similarity
of titles (``pg_trgm``) and vector similarity (pgvector), each a ranked list of item pks."""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from cachetools import LRUCache
from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    bindparam,
    case,
    cast,
    func,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.ext.asyncio import AsyncEngine

from engines.serving.rules import ItemRules
from engines.serving.search import FULLTEXT, RETRIEVERS, TRIGRAM, Retrieved
from engines.serving.search import VECTOR as VECTOR_RETRIEVER
from storage.filters import item_conditions
from storage.hot_reads import HotReads
from storage.repositories.vectors import VectorRepository, nearest_query, vector_texts
from storage.sql import TRIGRAM_THRESHOLD
from storage.tables import ITEMS
from storage.tenancy import tenant_scope

#: a word as tsquery syntax may hold it (letters and digits only: nothing to escape)
WORD = re.compile(r"[^\W_]+", re.UNICODE)
#: quotes or a leading minus: the user wrote search syntax, so every hit must satisfy it
SYNTAX = re.compile(r'"|(?:^|\s)-\w')
#: matched documents ranked per kind of full-text match, at most
FULLTEXT_SCAN = 1000
SIMPLE = cast(literal("simple"), REGCONFIG)


def any_word_query(text_: str) -> str | None:
    """A ``to_tsquery`` text matching any word; the last may be unfinished (a prefix)."""
    words = [w.lower() for w in WORD.findall(text_)][:32]
    if not words:
        return None
    words[-1] += ":*"
    return " | ".join(words)


def title_words(any_word: str) -> str:
    """``any_word_query``'s text restricted to title lexemes (weight A)."""
    return " | ".join(
        f"{w[:-2]}:*A" if w.endswith(":*") else f"{w}:A" for w in any_word.split(" | ")
    )


#: statements kept per shape (tenant, filter, retrievers, ...): building one with SQLAlchemy
#: and working out its cache key cost more than a fifth of a search's CPU
STATEMENTS = 512


@dataclass(frozen=True, slots=True)
class _Shape:
    tenant: str
    rules: ItemRules
    pool: int
    syntax: bool
    fulltext: bool
    space: str | None
    dim: int | None
    trigram: bool


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A statement as asyncpg runs it: its SQL, and per ``$n`` the name of the value to
    bind (the request's text and vector) or the value compiled into it (tenant, limits)."""

    sql: str
    names: tuple[str, ...]
    fixed: dict[str, Any]

    @classmethod
    def of(cls, stmt: Any, dialect: Any) -> _Compiled | None:
        compiled = stmt.compile(dialect=dialect)
        if compiled.positiontup is None:
            return None
        fixed = {k: v for k, v in compiled.params.items() if k not in BOUND}
        # values SQLAlchemy would convert on the way (an attribute filter's JSONB, say)
        # keep the statement on SQLAlchemy's path: asyncpg would refuse them as they are
        if not all(_plain(v) for v in fixed.values()):
            return None
        return cls(compiled.string, tuple(compiled.positiontup), fixed)

    def args(self, values: dict[str, Any]) -> list[Any]:
        return [values[n] if n in BOUND else self.fixed[n] for n in self.names]


def _plain(value: Any) -> bool:
    """A value asyncpg binds as SQLAlchemy would: a scalar, or a list of scalars."""
    if isinstance(value, list | tuple):
        return all(isinstance(v, str | int | float) for v in value)
    return value is None or isinstance(value, str | int | float)


#: what each search binds when it runs (the rest is compiled into its statements)
BOUND = frozenset({"fts_all", "fts_any", "fts_title", "title_text", "trgm_text", "query_vector"})


#: runs one statement of a search: its rows, or None when that path gave up
Fetch = Callable[[], Awaitable[list[Any] | None]]


async def _union_then_trigram(union: Fetch | None, trigram: Fetch | None) -> list[Any] | None:
    """Rows of the union of full text and vectors, then of trigrams (the costly one) only
    when no item holds every word of the text: a typo or an unfinished word, most likely.
    None as soon as a statement's path gives up."""
    rows: list[Any] = []
    if union is not None:
        got = await union()
        if got is None:
            return None
        rows = list(got)
    whole = any(r["tier"] >= 1 for r in rows if r["retriever"] == FULLTEXT)
    if trigram is not None and not whole:
        got = await trigram()
        if got is None:
            return None
        rows += got
    return rows


@dataclass(frozen=True, slots=True)
class _Statements:
    union: Any
    trigram: Any
    #: the same for one round trip each through ``HotReads`` (None: SQLAlchemy only)
    fast_union: _Compiled | None
    fast_trigram: _Compiled | None


class SearchRepository:
    def __init__(
        self, engine: AsyncEngine, vectors: VectorRepository, hot: HotReads | None = None
    ) -> None:
        self.engine = engine
        self.vectors = vectors
        self.hot = hot
        self._statements: LRUCache[_Shape, _Statements] = LRUCache(STATEMENTS)

    async def retrieve(
        self,
        tenant: str,
        query: str,
        pool: int,
        rules: ItemRules,
        vector: tuple[str, np.ndarray] | None = None,
        retrievers: Sequence[str] = RETRIEVERS,
    ) -> dict[str, list[Retrieved]]:
        """Each retriever's best ``pool`` items, best first, among the items meeting
        ``rules``. Full text and vectors go in one statement; trigrams, the costly one,
        only when asked for alone or when no item holds every word of the text (a typo or
        an unfinished word, most likely)."""
        any_word = any_word_query(query)
        space, dim = None, None
        wanted = VECTOR_RETRIEVER in retrievers and vector is not None and np.any(vector[1])
        if wanted and vector is not None:
            stored = await self.vectors.dimension(tenant, vector[0])
            if stored == int(vector[1].shape[0]):
                space, dim = vector[0], stored
        shape = _Shape(
            tenant,
            rules,
            pool,
            bool(SYNTAX.search(query)),  # phrases and exclusions bind every retriever
            FULLTEXT in retrievers and any_word is not None,
            space,
            dim,
            TRIGRAM in retrievers and any_word is not None,
        )
        built = self._statements.get(shape) or self._build(shape)
        params: dict[str, Any] = {"fts_all": query, "title_text": query, "trgm_text": query}
        if any_word is not None:
            params |= {"fts_any": any_word, "fts_title": title_words(any_word)}
        if vector is not None and dim is not None:
            params["query_vector"] = vector[1].astype(np.float32)
        out: dict[str, list[Retrieved]] = {r: [] for r in retrievers}
        rows = await self._fast(built, params)
        if rows is None:
            rows = await self._run(built, params)
        for r in rows:
            if r["score"] is None or math.isnan(r["score"]):  # a zero vector has no direction
                continue
            out[r["retriever"]].append(
                Retrieved(int(r["item_id"]), float(r["score"]), int(r["tier"]))
            )
        for hits in out.values():
            hits.sort(key=lambda h: (-h.score, h.pk))
        return out

    async def _fast(self, built: _Statements, params: dict[str, Any]) -> list[Any] | None:
        """The retrievers' rows in one round trip per statement, outside any transaction,
        on the hot-read pool (whose sessions carry the two settings); None when that path
        is unavailable (the caller then runs them through SQLAlchemy)."""
        hot = self.hot
        if hot is None or (built.union is not None and built.fast_union is None):
            return None
        if built.trigram is not None and built.fast_trigram is None:
            return None
        values = dict(params)
        if "query_vector" in values:  # pgvector's text form: asyncpg has no codec for it
            values["query_vector"] = vector_texts(values["query_vector"][None, :])[0]

        def runs(compiled: _Compiled | None) -> Fetch | None:
            if compiled is None:
                return None

            async def fetch() -> list[Any] | None:
                got = await hot.fetch(compiled.sql, *compiled.args(values), retry=False)
                return None if isinstance(got, bool) else got

            return fetch

        return await _union_then_trigram(runs(built.fast_union), runs(built.fast_trigram))

    async def _run(self, built: _Statements, params: dict[str, Any]) -> list[Any]:
        # The service's own role, not the tenant's: behind a row-level-security policy
        # PostgreSQL uses no index for operators that are not leakproof (@@, <%), so as the
        # tenant every search would read the tenant's whole catalogue (MovieLens: 25-70 ms
        # instead of 4-13). Every retriever names the tenant itself (the rules' conditions
        # and the vector index predicate); tests/test_search.py checks tenants stay apart.
        with tenant_scope(None):
            async with self.engine.begin() as conn:
                # iterative scans keep returning rows while filters drop the nearest ones;
                # both settings last until the end of this transaction
                await conn.execute(
                    text(
                        "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                        "set_config('pg_trgm.word_similarity_threshold', :threshold, true)"
                    ),
                    {"threshold": str(TRIGRAM_THRESHOLD)},
                )

                def runs(stmt: Any) -> Fetch | None:
                    if stmt is None:
                        return None

                    async def fetch() -> list[Any]:
                        return [r._mapping for r in await conn.execute(stmt, params)]

                    return fetch

                rows = await _union_then_trigram(runs(built.union), runs(built.trigram))
        assert rows is not None  # SQLAlchemy's path raises rather than gives up
        return rows

    def _build(self, shape: _Shape) -> _Statements:
        """The union of full text and vectors, and the trigram statement (None for those
        not asked for), with every value of the text and vector left to bind."""
        conditions = item_conditions(shape.tenant, shape.rules)
        if shape.syntax:
            conditions.append(ITEMS.c.search_doc.op("@@")(self._strict()))
        parts: list[Select[Any]] = []
        if shape.fulltext:
            parts.append(self._fulltext(shape.pool, conditions))
        if shape.space is not None and shape.dim is not None:
            parts.append(self._vector(shape.tenant, shape.space, shape.dim, shape.pool, conditions))
        union = union_all(*parts) if parts else None
        trigram = self._trigram(shape.pool, conditions) if shape.trigram else None
        dialect = self.engine.dialect
        built = _Statements(
            union,
            trigram,
            _Compiled.of(union, dialect) if union is not None else None,
            _Compiled.of(trigram, dialect) if trigram is not None else None,
        )
        self._statements[shape] = built
        return built

    @staticmethod
    def _ranked(name: str, inner: Select[Any]) -> Select[Any]:
        sub = inner.subquery()
        return select(literal(name).label("retriever"), sub.c.item_id, sub.c.score, sub.c.tier)

    @staticmethod
    def _strict() -> ColumnElement[Any]:
        """The text as web search syntax: every word, "phrases", -exclusions, or."""
        return func.websearch_to_tsquery(SIMPLE, bindparam("fts_all", type_=String))

    def _fulltext(self, pool: int, conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
        doc = ITEMS.c.search_doc
        loose = func.to_tsquery(SIMPLE, bindparam("fts_any", type_=String))
        strict = self._strict()
        # ranking reads every matched document, so each kind of match is capped: items with
        # every word (usually few) and items with any word (a common word matches thousands)
        columns = (ITEMS.c.id, ITEMS.c.title, doc)
        every = select(*columns).where(doc.op("@@")(strict), *conditions).limit(FULLTEXT_SCAN)
        some = select(*columns).where(doc.op("@@")(loose), *conditions).limit(FULLTEXT_SCAN)
        # matches in titles (weight A) get a scan of their own, so an item titled with a
        # common word is not lost among the thousands that mention it elsewhere
        titled_query = func.to_tsquery(SIMPLE, bindparam("fts_title", type_=String))
        titled = (
            select(*columns).where(doc.op("@@")(titled_query), *conditions).limit(FULLTEXT_SCAN)
        )
        matched = every.union(some, titled).subquery()
        # cover density ranks titles (A) over tags (B) over text (C), normalised by length
        # (flag 1: divided by 1 + log of the length); a hit with every word ranks first
        complete = matched.c.search_doc.op("@@")(strict)
        score = func.ts_rank_cd(matched.c.search_doc, loose, 1) + case((complete, 1.0), else_=0.0)
        # tier 2: the title is the text (same trigrams: "godfather the" = "Godfather, The")
        typed: ColumnElement[str] = bindparam("title_text", type_=String)
        tier = case((func.similarity(typed, matched.c.title) >= 1.0, 2), (complete, 1), else_=0)
        inner = (
            select(matched.c.id.label("item_id"), score.label("score"), tier.label("tier"))
            .order_by(score.desc(), matched.c.id)
            .limit(pool)
        )
        return self._ranked(FULLTEXT, inner)

    def _trigram(self, pool: int, conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
        typed: ColumnElement[str] = bindparam("trgm_text", type_=String)
        title = ITEMS.c.title  # pg_trgm ignores case
        # word similarity finds the typed text inside a longer title; whole-title similarity
        # then puts "Jumanji" before "Jumanji: Welcome to the Jungle" for "jumanji", and is
        # 1 when the title is the text (same trigrams: "godfather the" = "Godfather, The")
        whole = func.similarity(typed, title)
        score = func.word_similarity(typed, title) + whole
        inner = (
            select(
                ITEMS.c.id.label("item_id"),
                score.label("score"),
                case((whole >= 1.0, 2), else_=0).label("tier"),
            )
            .where(typed.op("<%")(ITEMS.c.title), ITEMS.c.title.is_not(None), *conditions)
            .order_by(score.desc(), ITEMS.c.id)
            .limit(pool)
        )
        return self._ranked(TRIGRAM, inner)

    def _vector(
        self,
        tenant: str,
        space: str,
        dim: int,
        pool: int,
        conditions: Sequence[ColumnElement[bool]],
    ) -> Select[Any]:
        nearest = nearest_query(tenant, space, dim, pool, conditions).subquery()
        return select(
            literal(VECTOR_RETRIEVER).label("retriever"),
            nearest.c.item_id,
            (1.0 - nearest.c.d).label("score"),
            literal(0).label("tier"),
        )
