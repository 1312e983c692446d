"""A/B experiments: which variant a user sees, and whether the variants differ.

Assignment hashes the experiment and the user with SHA-256 (never Python's ``hash``, which
is salted per process): every replica, and every restart, puts a user in the same variant,
and users of one experiment are split independently of any other experiment's split.

Each variant's rate (clicks or conversions per served list) is a binomial proportion. Each
variant is compared with the first (the control) by a two-sided two-proportion z-test with
the pooled standard error; with several treatments, the significance level is divided
among them (Bonferroni). Intervals are 95% Wilson score intervals, which stay inside
[0, 1] and behave at small counts. The normal approximation needs enough data: a warning
says so while any variant has fewer than ``MIN_EXPOSURES`` lists or fewer than
``MIN_EVENTS`` successes and failures.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

#: significance level of the comparisons (shared among the treatments)
ALPHA = 0.05
#: the normal quantile of a two-sided 95% interval
Z95 = 1.959963984540054
MIN_EXPOSURES = 100
MIN_EVENTS = 10


def bucket(experiment_id: int, user_id: str) -> float:
    """A stable number in [0, 1) for this user in this experiment."""
    digest = hashlib.sha256(f"{experiment_id}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign(experiment_id: int, user_id: str, shares: Sequence[float]) -> int | None:
    """The index of the user's variant, or None when the shares (summing to at most 1)
    leave the user out of the experiment."""
    x, edge = bucket(experiment_id, user_id), 0.0
    for n, share in enumerate(shares):
        edge += share
        if x < edge:
            return n
    return None


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    if trials <= 0:
        return 0.0, 1.0
    p = min(successes, trials) / trials  # more attributed lists than served: at most all
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def z_test(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """(z, two-sided p) of the difference of rates x2/n2 - x1/n1."""
    if n1 <= 0 or n2 <= 0:
        return 0.0, 1.0
    x1, x2 = min(x1, n1), min(x2, n2)
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (x2 / n2 - x1 / n1) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


@dataclass(frozen=True, slots=True)
class Comparison:
    variant: int
    lift: float | None  # relative to the control's rate; None when the control's is 0
    z: float
    p: float
    significant: bool


@dataclass(frozen=True, slots=True)
class Significance:
    comparisons: list[Comparison]
    significant: bool
    leader: int | None
    warning: str | None


def compare(successes: Sequence[int], trials: Sequence[int]) -> Significance:
    """Each variant against the first."""
    if len(trials) < 2:
        return Significance([], False, None, "an experiment needs at least two variants")
    alpha = ALPHA / (len(trials) - 1)
    out = []
    successes = [min(s, t) for s, t in zip(successes, trials, strict=True)]
    base = successes[0] / trials[0] if trials[0] else 0.0
    for n in range(1, len(trials)):
        z, p = z_test(successes[0], trials[0], successes[n], trials[n])
        rate = successes[n] / trials[n] if trials[n] else 0.0
        lift = (rate - base) / base if base > 0 else None
        out.append(Comparison(n, lift, z, p, p < alpha))
    rates = [s / t if t else -1.0 for s, t in zip(successes, trials, strict=True)]
    leader = max(range(len(rates)), key=lambda n: rates[n]) if max(rates) >= 0 else None
    short = [
        n
        for n, (s, t) in enumerate(zip(successes, trials, strict=True))
        if t < MIN_EXPOSURES or s < MIN_EVENTS or t - s < MIN_EVENTS
    ]
    warning = (
        f"too little data for a reliable test: every variant needs at least {MIN_EXPOSURES} "
        f"served lists and {MIN_EVENTS} lists with and without the event (short: "
        f"{len(short)} of {len(trials)} variants)"
        if short
        else None
    )
    return Significance(out, any(c.significant for c in out), leader, warning)
