"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from engines.evaluation.metrics import (
    average_precision_at_k,
    coverage,
    mean_popularity,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

RANKED = [10, 11, 12, 13, 14]
RELEVANT = {11, 14, 99}


def test_recall_and_precision():
    assert recall_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 3)
    assert recall_at_k(RANKED, RELEVANT, 2) == pytest.approx(1 / 3)
    assert precision_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 5)


def test_ndcg_by_hand():
    dcg = 1 / math.log2(3) + 1 / math.log2(6)  # hits at ranks 2 and 5
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)  # three relevant items fit in k=5
    assert ndcg_at_k(RANKED, RELEVANT, 5) == pytest.approx(dcg / idcg)
    assert ndcg_at_k([11, 14, 99], RELEVANT, 3) == pytest.approx(1.0)
    # ideal DCG is cut at k: one relevant item at rank 1 of k=1 is perfect
    assert ndcg_at_k([11], RELEVANT, 1) == pytest.approx(1.0)
    assert ndcg_at_k(RANKED, set(), 5) == 0.0


def test_average_precision_by_hand():
    ap = (1 / 2 + 2 / 5) / 3
    assert average_precision_at_k(RANKED, RELEVANT, 5) == pytest.approx(ap)
    assert average_precision_at_k([1, 2], RELEVANT, 2) == 0.0


def test_coverage_and_popularity():
    assert coverage([[1, 2], [2, 3]], 10) == pytest.approx(0.3)
    assert mean_popularity([[1, 2], [2]], {1: 4.0, 2: 1.0}) == pytest.approx(2.0)
