"""Routing cold items into a blended list.

An item with few events has almost no collaborative signal, so in a weighted blend it only
ever gets the share of the algorithms that score items by content: it loses to every warm
item the others like, and a hybrid finds no cold item at all. Routing reserves a few of the
last places of each list for the best cold items of those algorithms (``Algorithm.
scores_cold_items``), each marked with the reason ``cold_item``, at every
(length / slots)-th place: new items get shown, and the warm part of the list loses only its
tail.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from engines.serving.blending import Blended, Contribution, Pool

#: the reason a routed item carries
COLD_ITEM = "cold_item"


def cold_slots(share: float, limit: int) -> int:
    """Places of a list of ``limit`` for cold items (``share`` of it, rounded half up)."""
    return int(share * limit + 0.5) if share > 0 else 0


def route_cold(
    chosen: list[int], pool: Pool, cold: np.ndarray, sources: Collection[str], slots: int
) -> tuple[list[int], list[int]]:
    """``chosen`` (item ids, best first) with its last non-cold items replaced by the best
    cold items (``cold``: sorted ids) that the ``sources`` parts of ``pool`` ranked, so that
    the list holds at least ``slots`` cold items. Returns the list and the items routed."""
    if slots <= 0 or not len(cold) or not chosen:
        return chosen, []
    picked = np.asarray(chosen, np.int64)
    is_cold = np.isin(picked, cold)
    need = min(slots, len(chosen)) - int(is_cold.sum())
    if need <= 0:
        return chosen, []
    found: list[int] = []
    seen = set(chosen)
    for name, weight, rec, _ in pool.parts:
        if name not in sources or weight <= 0:
            continue
        for item in rec.ids[np.isin(rec.ids, cold)].tolist():  # best first
            if item not in seen:
                found.append(item)
                seen.add(item)
            if len(found) >= need:
                break
        if len(found) >= need:
            break
    if not found:
        return chosen, []
    # the last warm items give way; the cold ones take every (len / slots)-th place, so
    # each page of a long list has its share
    warm = [n for n in range(len(chosen)) if not is_cold[n]]
    drop = set(warm[len(warm) - len(found) :])
    kept = [item for n, item in enumerate(chosen) if n not in drop]
    size = len(kept) + len(found)
    places = {size * (j + 1) // len(found) - 1 for j in range(len(found))}
    extra, rest = iter(found), iter(kept)
    return [next(extra) if n in places else next(rest) for n in range(size)], found


def routed_blended(pool: Pool, item: int) -> Blended:
    """A routed item with the contributions of the algorithms that ranked it."""
    out = Blended(item, 0.0)
    for name, weight, rec, norm in pool.parts:
        hit = np.flatnonzero(rec.ids == item)
        if len(hit):
            c = Contribution(name, weight, float(norm[hit[0]]), rec.because.get(item))
            out.contributions.append(c)
            out.score += c.value
    out.contributions.sort(key=lambda c: -c.value)
    out.contributions.append(Contribution(COLD_ITEM, 0.0, 0.0))
    return out
