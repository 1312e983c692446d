"""Finished recommendations as cache entries: the key of a request and the bytes of its
answer. The key names everything of the request that changes the answer; what changes
with time (the user's events, the catalogue) is the store's stamp, not part of the key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from engines.serving.blending import Blended, Contribution
from engines.serving.rules import ItemRules

#: bump when the encoding below changes, so old entries are never decoded as new ones
FORMAT = 1


def answer_key(
    tenant: str,
    user: str,
    weights: Mapping[str, float],
    configs: Mapping[str, Mapping[str, Any]],
    versions: Mapping[str, int],
    rules: ItemRules | None,
    limit: int,
    exclude_seen: bool,
    exclude_items: Sequence[str] | None,
    calibration: float | None,
    fill: bool,
    explain: bool = True,
    diversity: float = 0.0,
    arrangement: object = None,
    page_size: int | None = None,
) -> str:
    parts = [
        FORMAT,
        tenant,
        user,
        sorted(weights.items()),
        {name: dict(config) for name, config in configs.items()},
        sorted(versions.items()),
        repr(rules or ItemRules()),  # tuples of strings and numbers: stable across processes
        limit,
        exclude_seen,
        sorted(exclude_items or ()),
        calibration,
        fill,
        explain,
        diversity,
        repr(arrangement),  # frozen dataclasses of rules and numbers
        page_size,
    ]
    text = json.dumps(parts, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def encode_answer(blended: Sequence[Blended]) -> bytes:
    rows = [
        [
            int(b.item_id),
            float(b.score),
            [
                [
                    c.algorithm,
                    float(c.weight),
                    float(c.normalised),
                    None if c.because_item is None else int(c.because_item),
                ]
                for c in b.contributions
            ],
        ]
        for b in blended
    ]
    return json.dumps(rows, separators=(",", ":")).encode()


def decode_answer(raw: bytes) -> list[Blended]:
    return [
        Blended(int(pk), float(score), [Contribution(a, w, n, b) for a, w, n, b in parts])
        for pk, score, parts in json.loads(raw)
    ]
