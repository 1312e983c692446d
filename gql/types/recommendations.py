"""Recommendations, similar items, trending, search, the algorithm catalogue and training."""

from __future__ import annotations

import math
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from engines.serving.blending import Blended
from engines.serving.rules import AttributePredicate, ItemRules
from engines.serving.service import EngineError, Selection, training_fields
from gql.context import Context
from gql.errors import ClientError, UserError
from gql.relay import check_first
from gql.server.auth import forbid_other_users
from gql.types.items import Item
from storage.errors import ErrorCode
from storage.errors import UserError as StoredUserError

Info = strawberry.Info[Context, None]


@strawberry.type(description="How one algorithm contributed to a recommendation.")
class Reason:
    algorithm: str
    weight: float = strawberry.field(description="The algorithm's weight in this request.")
    score: float = strawberry.field(description="Its score for the item, scaled to [0, 1].")
    contribution: float = strawberry.field(description="weight * score: its share of the total.")
    because_pk: strawberry.Private[int | None]

    @strawberry.field(description="The item of the user's history that caused it, if known.")
    async def because_item(self, info: Info) -> Item | None:
        if self.because_pk is None:
            return None
        rec = await info.context.loaders.items_by_pk.load(self.because_pk)
        return Item.of(rec) if rec else None


@strawberry.type
class Recommendation:
    rank: int
    score: float = strawberry.field(description="Blended score: the sum of contributions.")
    reasons: list[Reason]
    pk: strawberry.Private[int]

    @strawberry.field
    async def item(self, info: Info) -> Item | None:
        rec = await info.context.loaders.items_by_pk.load(self.pk)
        return Item.of(rec) if rec else None


@strawberry.type
class SearchHit:
    score: float = strawberry.field(description="Cosine similarity to the query.")
    pk: strawberry.Private[int]

    @strawberry.field
    async def item(self, info: Info) -> Item | None:
        rec = await info.context.loaders.items_by_pk.load(self.pk)
        return Item.of(rec) if rec else None


@strawberry.input(description="An algorithm or preset to use, its weight and config changes.")
class AlgorithmInput:
    name: str
    weight: float = 1.0
    config: JSON | None = strawberry.field(
        default=None, description="Overrides of the algorithm's serving options."
    )


@strawberry.input(description="A condition on one attribute; every operator given must hold.")
class AttributeFilterInput:
    key: str
    eq: JSON | None = None
    in_: list[JSON] | None = strawberry.field(default=None, name="in")
    lt: float | None = None
    lte: float | None = None
    gt: float | None = None
    gte: float | None = None


@strawberry.input(description="Which items may be recommended. Hidden items never are.")
class RecommendationFilterInput:
    entity_type: str | None = None
    categories: list[str] | None = strawberry.field(
        default=None, description="Only items in at least one of these categories."
    )
    exclude_categories: list[str] | None = None
    tags: list[str] | None = None
    attributes: list[AttributeFilterInput] | None = None
    exclude_ids: list[str] | None = strawberry.field(
        default=None, description="Your ids of items never to return."
    )


#: most attribute conditions, values of one ``in`` and labels of one filter list
MAX_FILTER_TERMS = 1000


def rules_of(f: RecommendationFilterInput | None) -> ItemRules:
    if f is None:
        return ItemRules()
    attributes = f.attributes or ()
    for name, values in (
        ("attributes", attributes),
        ("categories", f.categories or ()),
        ("excludeCategories", f.exclude_categories or ()),
        ("tags", f.tags or ()),
    ):
        if len(values) > MAX_FILTER_TERMS:
            raise ClientError(f"at most {MAX_FILTER_TERMS} entries", field=f"filter.{name}")
    preds = []
    for n, a in enumerate(attributes):
        where = f"filter.attributes.{n}"
        for bound in (a.lt, a.lte, a.gt, a.gte):
            if bound is not None and not math.isfinite(bound):
                raise ClientError("attribute bounds must be finite", field=where)
        if a.in_ is not None and len(a.in_) > MAX_FILTER_TERMS:
            raise ClientError(f"`in` takes at most {MAX_FILTER_TERMS} values", field=where)
        try:
            preds.append(AttributePredicate.of(a.key, a.eq, a.in_, a.lt, a.lte, a.gt, a.gte))
        except (TypeError, ValueError):
            raise ClientError("`eq`/`in` values must be finite JSON", field=where) from None
    return ItemRules(
        entity_type=f.entity_type,
        categories_any=tuple(f.categories or ()),
        categories_exclude=tuple(f.exclude_categories or ()),
        tags_any=tuple(f.tags or ()),
        attributes=tuple(preds),
    )


def selection_of(algorithms: list[AlgorithmInput] | None) -> list[Selection] | None:
    if algorithms is None:
        return None
    if not algorithms:
        raise ClientError(
            "give at least one algorithm, or leave `algorithms` out", field="algorithms"
        )
    for a in algorithms:
        if a.config is not None and not isinstance(a.config, dict):
            raise ClientError(
                f"config of {a.name} must be an object", field="algorithms", code="INVALID_CONFIG"
            )
    return [Selection(a.name, a.weight, a.config) for a in algorithms]


def check_ids(ids: list[str] | None, limit: int) -> None:
    if ids is not None and len(ids) > limit:
        raise ClientError(f"at most {limit} ids", field="filter.excludeIds", code="TOO_MANY")


def as_client_error(exc: EngineError) -> ClientError:
    return ClientError(str(exc), field=exc.field, code=exc.code)


def recommendations_of(blended: list[Blended], explain: bool) -> list[Recommendation]:
    return [
        Recommendation(
            rank=n + 1,
            score=b.score,
            pk=b.item_id,
            reasons=[
                Reason(
                    algorithm=c.algorithm,
                    weight=c.weight,
                    score=c.normalised,
                    contribution=c.value,
                    because_pk=c.because_item,
                )
                for c in b.contributions
            ]
            if explain
            else [],
        )
        for n, b in enumerate(blended)
    ]


@strawberry.type(description="A recommendation algorithm installed by a plugin.")
class AlgorithmInfo:
    name: str
    description: str
    plugin: str
    config_schema: JSON = strawberry.field(description="JSON Schema of its config.")
    training_options: list[str] = strawberry.field(
        description="Config keys that only change by training (modelTrain)."
    )
    model_version: int | None
    trained_at: datetime | None
    metrics: JSON | None


@strawberry.type(description="A named blend of algorithms, usable like an algorithm.")
class Preset:
    name: str
    weights: JSON


@strawberry.type
class RecommendationQueries:
    @strawberry.field(description="What this user should see next, best first.")
    async def recommendations(
        self,
        info: Info,
        user_id: str,
        first: int = 10,
        algorithms: list[AlgorithmInput] | None = None,
        filter: RecommendationFilterInput | None = None,
        exclude_seen: bool = True,
        explain: bool = True,
    ) -> list[Recommendation]:
        ctx = info.context
        check_first(first, ctx.settings.max_page_size)
        if (reason := forbid_other_users(ctx.auth, user_id)) is not None:
            raise ClientError(reason, field="userId", code="FORBIDDEN")
        check_ids(filter.exclude_ids if filter else None, ctx.settings.max_batch_size)
        try:
            blended = await ctx.engine.recommend(
                ctx.tenant,
                user_id,
                first,
                selection_of(algorithms),
                rules_of(filter),
                exclude_seen=exclude_seen,
                exclude_items=(filter.exclude_ids if filter else None),
            )
        except EngineError as exc:
            raise as_client_error(exc) from None
        return recommendations_of(blended, explain)

    @strawberry.field(description="Items like this one (also bought, similar content).")
    async def similar_items(
        self,
        info: Info,
        item_id: str,
        first: int = 10,
        algorithms: list[AlgorithmInput] | None = None,
        filter: RecommendationFilterInput | None = None,
    ) -> list[Recommendation]:
        ctx = info.context
        check_first(first, ctx.settings.max_page_size)
        try:
            blended = await ctx.engine.similar_items(
                ctx.tenant, item_id, first, selection_of(algorithms), rules_of(filter)
            )
        except EngineError as exc:
            raise as_client_error(exc) from None
        return recommendations_of(blended, True)

    @strawberry.field(description="Most popular items lately, by time-decayed event weight.")
    async def trending(
        self,
        info: Info,
        first: int = 10,
        window_hours: float | None = None,
        filter: RecommendationFilterInput | None = None,
    ) -> list[Recommendation]:
        ctx = info.context
        check_first(first, ctx.settings.max_page_size)
        if window_hours is not None and not (0 < window_hours < 1e6):
            raise ClientError("windowHours must be positive", field="windowHours")
        blended = await ctx.engine.trending(ctx.tenant, first, window_hours, rules_of(filter))
        return recommendations_of(blended, True)

    @strawberry.field(description="Items whose content is closest in meaning to `text`.")
    async def search(
        self,
        info: Info,
        text: str,
        first: int = 10,
        filter: RecommendationFilterInput | None = None,
    ) -> list[SearchHit]:
        ctx = info.context
        check_first(first, ctx.settings.max_page_size)
        if not text.strip() or len(text) > 1000:
            raise ClientError("text must have 1..1000 characters", field="text")
        hits = await ctx.engine.search(ctx.tenant, text, first, rules_of(filter))
        return [SearchHit(score=s, pk=pk) for pk, s in hits]

    @strawberry.field(description="Installed algorithms and their trained models.")
    async def algorithms(self, info: Info) -> list[AlgorithmInfo]:
        ctx = info.context
        registry = ctx.engine.registry
        models = await ctx.engine.models(ctx.tenant)
        out = []
        for name, cls in sorted(registry.algorithms.items()):
            model = models.get(name)
            out.append(
                AlgorithmInfo(
                    name=name,
                    description=cls.description,
                    plugin=registry.algorithm_plugins[name],
                    config_schema=cls.config_schema(),
                    training_options=sorted(training_fields(cls.Config)),
                    model_version=model.version if model else None,
                    trained_at=model.trained_at if model else None,
                    metrics=model.metrics if model else None,
                )
            )
        return out

    @strawberry.field(description="Named blends, e.g. `hybrid`.")
    def presets(self, info: Info) -> list[Preset]:
        return [
            Preset(name=n, weights=w)
            for n, w in sorted(info.context.engine.registry.presets.items())
        ]


@strawberry.input
class ModelTrainInput:
    algorithms: list[str] | None = strawberry.field(
        default=None, description="Which to train; all when left out."
    )
    configs: list[AlgorithmInput] | None = strawberry.field(
        default=None, description="Training configs by algorithm name (weights are ignored)."
    )


@strawberry.type
class TrainedModel:
    algorithm: str
    version: int
    seconds: float
    users: int
    items: int
    events: int


@strawberry.type
class ModelTrainPayload:
    models: list[TrainedModel]
    user_errors: list[UserError]


@strawberry.type
class RecommendationMutations:
    @strawberry.mutation(description="Train models now and swap them in on every replica.")
    async def model_train(self, info: Info, input: ModelTrainInput) -> ModelTrainPayload:
        ctx = info.context
        configs = {c.name: c.config or {} for c in input.configs or ()}
        try:
            results = await ctx.trainer.train(ctx.tenant, input.algorithms, configs)
        except EngineError as exc:
            code = {"UNKNOWN_ALGORITHM": ErrorCode.NOT_FOUND, "BUSY": ErrorCode.BUSY}.get(
                exc.code, ErrorCode.INVALID
            )
            field = ("input", exc.field) if exc.field else ("input",)
            err = StoredUserError(field, str(exc), code)
            return ModelTrainPayload(models=[], user_errors=[UserError.of(err)])
        return ModelTrainPayload(
            models=[
                TrainedModel(
                    algorithm=r.algorithm,
                    version=r.version,
                    seconds=r.seconds,
                    users=r.n_users,
                    items=r.n_items,
                    events=r.n_events,
                )
                for r in results
            ],
            user_errors=[],
        )
