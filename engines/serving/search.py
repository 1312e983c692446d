"""Hybrid search: the retrievers' ranked lists fused by reciprocal rank fusion (Cormack et
al., SIGIR 2009) -- robust to scores on different scales, and an item several retrievers
agree on rises above one any single retriever ranks first.

RRF alone is flat: an item ranked 6th by three retrievers beats one ranked 1st by two. So
hits that contain the whole text come first, in tiers: a title that *is* the text (same
trigrams: case, punctuation and word order aside), then items with every word of it; RRF
orders each tier."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

FULLTEXT, TRIGRAM, VECTOR = "fulltext", "trigram", "vector"
RETRIEVERS = (FULLTEXT, TRIGRAM, VECTOR)
#: RRF's smoothing constant: the published default, which keeps one retriever's first place
#: from outweighing agreement between the others
RRF_K = 60


@dataclass(frozen=True)
class Retrieved:
    """One retriever's hit: the item, its score there and how much of the text it holds
    (tier 2: its title is the text; 1: every word of it; 0: less)."""

    pk: int
    score: float
    tier: int = 0


@dataclass(frozen=True)
class Match:
    """How one retriever found a hit: its rank there (1 = best) and its own score."""

    retriever: str
    rank: int
    score: float


@dataclass(frozen=True)
class SearchHit:
    pk: int
    #: tier (2: the title is the text, 1: every word found, 0: else) plus the weighted RRF
    #: sum over retrievers of weight / (RRF_K + rank), scaled so 1 = first in every
    #: retriever that found anything
    score: float
    matches: tuple[Match, ...]


def pool_size(limit: int) -> int:
    """How deep each retriever looks: fusion needs more than the final page."""
    return min(max(3 * limit, 30), 300)


#: each retriever's vote in the fusion: meaning is the weaker evidence for the literal texts
#: people type most (titles, names, tags) ...
WEIGHTS = {FULLTEXT: 1.0, TRIGRAM: 1.0, VECTOR: 0.5}
#: ... and so is a word list none of whose hits holds every word (a typo, most often)
PARTIAL_WORDS_WEIGHT = 0.5


def fuse(ranked: Mapping[str, Sequence[Retrieved]], limit: int) -> list[SearchHit]:
    """The best ``limit`` items of the retrievers' lists (best first): by tier, then RRF."""
    totals: dict[int, float] = {}
    tiers: dict[int, int] = {}
    matches: dict[int, list[Match]] = {}
    for retriever, hits in ranked.items():
        weight = WEIGHTS.get(retriever, 1.0)
        if retriever == FULLTEXT and not any(h.tier for h in hits):
            weight *= PARTIAL_WORDS_WEIGHT
        for rank, hit in enumerate(hits, start=1):
            pk = hit.pk
            totals[pk] = totals.get(pk, 0.0) + weight / (RRF_K + rank)
            matches.setdefault(pk, []).append(Match(retriever, rank, hit.score))
            if hit.tier:
                tiers[pk] = max(tiers.get(pk, 0), hit.tier)
    found = [r for r, hits in ranked.items() if hits]
    best = max(sum(WEIGHTS.get(r, 1.0) for r in found), 1e-9) / (RRF_K + 1)
    order = sorted(totals, key=lambda pk: (-tiers.get(pk, 0), -totals[pk], pk))[:limit]
    return [SearchHit(pk, tiers.get(pk, 0) + totals[pk] / best, tuple(matches[pk])) for pk in order]
