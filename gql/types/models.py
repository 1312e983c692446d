"""The algorithm catalogue, presets, and training: what is installed and trained, and
``modelTrain`` to train now."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from engines.errors import InputError, RecographError
from engines.host.registry import training_fields
from gql.context import Context
from gql.errors import UserError, user_errors
from gql.types.recommendations import AlgorithmInput

Info = strawberry.Info[Context, None]


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
    model_config: JSON | None = strawberry.field(
        description="The config the current model serves with: its training config, "
        "settings chosen at training included (requests may override serving options)."
    )


@strawberry.type(description="A named blend of algorithms, usable like an algorithm.")
class Preset:
    name: str
    weights: JSON


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
    report: JSON = strawberry.field(
        description="What training chose and measured, e.g. the collaborative filter's "
        "automatic selection (`autotune`: settings chosen, validation Recall@20)."
    )


@strawberry.type
class ModelTrainPayload:
    models: list[TrainedModel]
    user_errors: list[UserError]


@strawberry.type
class ModelQueries:
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
                    config_schema=JSON(cls.config_schema()),
                    training_options=sorted(training_fields(cls.Config)),
                    model_version=model.version if model else None,
                    trained_at=model.trained_at if model else None,
                    metrics=JSON(model.metrics) if model else None,
                    model_config=JSON(model.algorithm.config.model_dump()) if model else None,
                )
            )
        return out

    @strawberry.field(description="Named blends, e.g. `hybrid`.")
    def presets(self, info: Info) -> list[Preset]:
        return [
            Preset(name=n, weights=JSON(w))
            for n, w in sorted(info.context.engine.registry.presets.items())
        ]


@strawberry.type
class ModelMutations:
    @strawberry.mutation(description="Train models now and swap them in on every replica.")
    async def model_train(self, info: Info, input: ModelTrainInput) -> ModelTrainPayload:
        ctx = info.context
        try:
            configs = {c.name: c.config_dict() or {} for c in input.configs or ()}
            if ctx.settings.trains_here():
                results = await ctx.trainer.train(ctx.tenant, input.algorithms, configs)
            else:  # API workers never train: the trainer process does, and answers
                results = await ctx.trainer.request(
                    ctx.tenant, input.algorithms, configs, ctx.settings.train_wait_seconds
                )
        except RecographError as exc:
            err = InputError(("input", *exc.field), exc.message, exc.code)
            return ModelTrainPayload(models=[], user_errors=user_errors([err]))
        return ModelTrainPayload(
            models=[
                TrainedModel(
                    algorithm=r.algorithm,
                    version=r.version,
                    seconds=r.seconds,
                    users=r.n_users,
                    items=r.n_items,
                    events=r.n_events,
                    report=JSON(r.report),
                )
                for r in results
            ],
            user_errors=[],
        )
