"""Recommendation engines: the plugin API, the host, serving, training and evaluation.

Plugin authors need this one import: everything an algorithm or embedder plugin may use is
exported here (``from engines import Algorithm, hookimpl, history_arrays, ...``).
"""

from engines.algorithm import (
    Algorithm,
    AlgorithmConfig,
    HistoryEvent,
    Ids,
    Query,
    Recommended,
    RecordedEvent,
    Scores,
    training_field,
)
from engines.data import ItemContent, TrainingData
from engines.embedders import Embedder, item_text
from engines.errors import ErrorCode, InputError, RecographError
from engines.hookspecs import hookimpl
from engines.item_to_item import ItemToItem
from engines.toolkit import (
    compress,
    decayed,
    history_arrays,
    history_matrix,
    no_opinion,
    normalise_rows,
    position,
    positions,
    preference_matrix,
    top_per_row,
)
from engines.tuning import Holdout, Search, holdout_split, ranking_metrics

__all__ = [
    "Algorithm",
    "AlgorithmConfig",
    "Embedder",
    "ErrorCode",
    "HistoryEvent",
    "Holdout",
    "Ids",
    "InputError",
    "ItemContent",
    "ItemToItem",
    "Query",
    "RecographError",
    "Recommended",
    "RecordedEvent",
    "Scores",
    "Search",
    "TrainingData",
    "compress",
    "decayed",
    "history_arrays",
    "history_matrix",
    "holdout_split",
    "hookimpl",
    "item_text",
    "no_opinion",
    "normalise_rows",
    "position",
    "positions",
    "preference_matrix",
    "ranking_metrics",
    "top_per_row",
    "training_field",
]
