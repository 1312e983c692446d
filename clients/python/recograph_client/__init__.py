"""Typed Python client for the Recograph GraphQL API: :class:`Recograph` (sync) and
:class:`AsyncRecograph` (asyncio). The models come from ``recograph_client.generated``,
which ariadne-codegen writes from the server's ``schema.graphql``."""

from ._client import (
    DEFAULT_BATCH_SIZE,
    AsyncRecograph,
    BulkUpsertResult,
    Recograph,
    RecordResult,
)
from ._retry import RetryPolicy
from .errors import (
    AuthenticationError,
    RateLimitError,
    RecographConnectionError,
    RecographError,
    RecographGraphQLError,
    RecographHTTPError,
    RecographUserError,
)
from .generated.enums import ApiKeyScope, Polarity, SearchRetriever, UserErrorCode
from .generated.fragments import ApiKeyFields as ApiKey
from .generated.fragments import ItemFields as Item
from .generated.fragments import RecommendationFields as Recommendation
from .generated.fragments import RecommendationFieldsReasons as Reason
from .generated.fragments import UserErrorFields as UserError
from .generated.input_types import (
    AlgorithmInput,
    AttributeFilterInput,
    InteractionInput,
    InteractionTypeUpsertInput,
    ItemFilterInput,
    ItemInput,
    RecommendationFilterInput,
    UserInput,
)
from .generated.interaction_recorded import (
    InteractionRecordedInteractionRecorded as InteractionEvent,
)
from .generated.model_train import ModelTrainModelTrainModels as TrainedModel
from .generated.model_trained import ModelTrainedModelTrained as ModelAnnouncement
from .generated.recommendations_updated import (
    RecommendationsUpdatedRecommendationsUpdated as RecommendationsUpdate,
)
from .generated.search import SearchSearch as SearchHit

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "AlgorithmInput",
    "ApiKey",
    "ApiKeyScope",
    "AsyncRecograph",
    "AttributeFilterInput",
    "AuthenticationError",
    "BulkUpsertResult",
    "InteractionEvent",
    "InteractionInput",
    "InteractionTypeUpsertInput",
    "Item",
    "ItemFilterInput",
    "ItemInput",
    "ModelAnnouncement",
    "Polarity",
    "RateLimitError",
    "Reason",
    "Recograph",
    "RecographConnectionError",
    "RecographError",
    "RecographGraphQLError",
    "RecographHTTPError",
    "RecographUserError",
    "Recommendation",
    "RecommendationFilterInput",
    "RecommendationsUpdate",
    "RecordResult",
    "RetryPolicy",
    "SearchHit",
    "SearchRetriever",
    "TrainedModel",
    "UserError",
    "UserErrorCode",
    "UserInput",
]
