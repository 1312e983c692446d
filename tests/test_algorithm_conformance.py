"""Every built-in algorithm passes the public conformance suite."""

from __future__ import annotations

from engines.testing import AlgorithmConformance
from plugins.cold_start import ColdStart
from plugins.collaborative import Collaborative
from plugins.content import Content
from plugins.ease import Ease
from plugins.item_knn import ItemKnn
from plugins.trending import Trending


class TestCollaborative(AlgorithmConformance):
    algorithm = Collaborative
    config = {"rank": 16}


class TestCollaborativeNormalised(AlgorithmConformance):
    """The graph filter with another normalisation of its item-item part."""

    algorithm = Collaborative
    config = {"rank": 16, "user_exponent": 0.3, "history_exponent": 0.7}


class TestCollaborativeAls(AlgorithmConformance):
    algorithm = Collaborative
    config = {"method": "als", "factors": 8, "iterations": 10}


class TestItemKnn(AlgorithmConformance):
    algorithm = ItemKnn


class TestEase(AlgorithmConformance):
    algorithm = Ease
    config = {"l2": 5.0, "keep": 20}


class TestContent(AlgorithmConformance):
    algorithm = Content


class TestTrending(AlgorithmConformance):
    algorithm = Trending
    personalised = False


class TestColdStart(AlgorithmConformance):
    """With its category and content tilts on, cold start is personalised."""

    algorithm = ColdStart
    config = {"category_boost": 1.0, "content_weight": 1.0}


class TestColdStartDefaults(AlgorithmConformance):
    """Its defaults (chosen on MovieLens validation data) are plain popularity."""

    algorithm = ColdStart
    personalised = False
