"""Business rules over a ranked list: boosts and buries, promoted items, category caps and
the rotation of items shown again and again.

They act on the blended pool (item pks, best first, with their blended scores) and never
change what the algorithms think of an item: each rule that moved an item is one more
reason on it (``boost``, ``promoted``, ``rotation``), and the reasons still sum to the score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engines.serving.rules import ItemRules

#: the reasons these rules add
BOOST = "boost"
PROMOTED = "promoted"
ROTATION = "rotation"


@dataclass(frozen=True, slots=True)
class Boost:
    """Multiply the score of the items ``rules`` select by ``factor``: above 1 boosts,
    below 1 buries, 0 removes them from the list."""

    rules: ItemRules
    factor: float


@dataclass(frozen=True, slots=True)
class Promotion:
    """At least ``share`` of each list (rounded, at least one item) comes from the items
    ``rules`` select; those not ranked there on their own merit are placed at evenly spread
    positions, with reason ``promoted``."""

    rules: ItemRules
    share: float


@dataclass(frozen=True, slots=True)
class Arrangement:
    boosts: tuple[Boost, ...] = ()
    promoted: Promotion | None = None
    #: at most this many items of any one category per list (an item counts for each of
    #: its categories)
    max_per_category: int | None = None
    #: 0..1: each time an item was shown to the user (and not acted on), its score is
    #: multiplied by ``1 - rotation``
    rotation: float = 0.0
    #: share of the list for cold items (``cold_routing.py``); None: the service's default
    cold_share: float | None = None

    @property
    def empty(self) -> bool:
        return not (self.boosts or self.promoted or self.max_per_category or self.rotation)


def factors(
    ids: np.ndarray,
    boosts: Sequence[tuple[float, np.ndarray]],
    shown: Mapping[int, int],
    rotation: float,
) -> np.ndarray:
    """Per item of ``ids``, the product of the boosts whose (sorted) selections hold it
    and of ``(1 - rotation) ** times shown``."""
    out = np.ones(len(ids), np.float64)
    for factor, selected in boosts:
        out[np.isin(ids, selected, assume_unique=False)] *= factor
    if rotation > 0 and shown:
        times = np.fromiter((shown.get(int(i), 0) for i in ids), np.float64, len(ids))
        out *= (1.0 - rotation) ** times
    return out


def capped(
    order: Sequence[int],
    categories: Sequence[Sequence[str]],
    cap: int,
    counts: dict[str, int] | None = None,
) -> list[int]:
    """The positions of ``order`` kept, in order, when no category may appear more than
    ``cap`` times (``categories[p]`` are the categories at position ``p``; ``counts``
    carries the counts of items already placed and is updated)."""
    counts = {} if counts is None else counts
    kept = []
    for p in order:
        cats = categories[p]
        if any(counts.get(c, 0) >= cap for c in cats):
            continue
        for c in cats:
            counts[c] = counts.get(c, 0) + 1
        kept.append(p)
    return kept


def promoted_count(share: float, limit: int) -> int:
    return 0 if share <= 0 or limit <= 0 else min(limit, max(1, round(share * limit)))


def spread_positions(count: int, limit: int) -> list[int]:
    """Where ``count`` promoted items go in a list of ``limit``: evenly spread, the first
    after the first organic stretch (2 of 10 -> positions 3 and 6, 0-based 2 and 5)."""
    return [min(limit - 1, math.ceil((j + 1) * limit / (count + 1)) - 1) for j in range(count)]


def place_promoted(
    organic: list[int], promoted: list[int], wanted: int, limit: int
) -> tuple[list[int], set[int]]:
    """Merge: ``organic`` (item ids, best first) keeps the items already promoted on their
    own merit; the missing ones come from ``promoted`` (best first) at spread positions,
    in place of the last organic items that are not promoted. Returns the list and the
    items placed by promotion."""
    page = organic[:limit]
    promo, on_page = set(promoted), set(page)
    have = len(on_page & promo)
    missing = [i for i in promoted if i not in on_page][: max(0, wanted - have)]
    if not missing:
        return page, set()
    room = limit - len(page)  # a short page takes them without dropping anything
    drop = max(0, len(missing) - room)
    plain = [i for i in page if i not in promo]
    dropped = set(plain[len(plain) - drop :]) if drop else set()
    keep = [i for i in page if i not in dropped]
    size = len(keep) + len(missing)
    slots = set(spread_positions(len(missing), size))
    extra, rest = iter(missing), iter(keep)
    out = [next(extra) if n in slots else next(rest) for n in range(size)]
    return out, set(missing)
