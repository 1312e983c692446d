"""Recommendation engines: the plugin system, algorithms, blending, training, evaluation.

Plugin authors need one import: ``from engines import hookimpl``.
"""

from engines.algorithm import (
    Algorithm,
    AlgorithmConfig,
    HistoryEvent,
    Query,
    Recommended,
    training_field,
)
from engines.data import ItemContent, TrainingData
from engines.hookspecs import hookimpl

__all__ = [
    "Algorithm",
    "AlgorithmConfig",
    "HistoryEvent",
    "ItemContent",
    "Query",
    "Recommended",
    "TrainingData",
    "hookimpl",
    "training_field",
]
