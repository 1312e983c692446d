"""A/B experiments of scenarios: create, start, stop, promote the winner, and read each
variant's rates with intervals and a significance test (``engines.serving.experiments``).

While an experiment runs on a scenario, ``recommendations(scenario:)`` serves each user the
scenario of their variant, gives the list a ``recommendationId`` that names the variant,
and counts it as an exposure; events sent with that ``recommendationId`` are the clicks
and conversions.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import Enum

import strawberry

from engines.errors import ErrorCode, InputError
from engines.serving.experiments import compare, wilson
from gql.context import Context
from gql.errors import UserError, user_errors
from gql.query_guard import bad_string
from gql.types.scenarios import NAME
from storage.repositories.placements import RUNNING, STOPPED, ExperimentRecord

Info = strawberry.Info[Context, None]
MAX_VARIANTS = 10


@strawberry.enum
class ExperimentStatus(Enum):
    DRAFT = "draft"
    RUNNING = "running"
    STOPPED = "stopped"


@strawberry.enum(
    description="What decides an experiment: CTR, the share of served lists with a click "
    "(an event of `clickTypes`); CONVERSION_RATE, with a conversion (`conversionTypes`)."
)
class ExperimentMetric(Enum):
    CTR = "ctr"
    CONVERSION_RATE = "conversion_rate"


@strawberry.type(description="A 95% Wilson score interval of a rate.")
class RateInterval:
    low: float
    high: float


@strawberry.type
class ExperimentVariant:
    name: str
    scenario: str
    share: float = strawberry.field(description="Its share of the users, 0..1.")
    exposures: int = strawberry.field(description="Lists it served.")
    clicks: int = strawberry.field(description="Its lists with at least one click event.")
    conversions: int = strawberry.field(description="Its lists with a conversion event.")
    ctr: float
    conversion_rate: float
    interval: RateInterval = strawberry.field(description="Of the experiment's metric.")


@strawberry.type(description="A treatment against the control (the first variant).")
class VariantComparison:
    variant: str
    lift: float | None = strawberry.field(
        description="Relative change of the metric against the control (null if it is 0)."
    )
    z_score: float
    p_value: float = strawberry.field(description="Two-sided, two-proportion z-test.")
    significant: bool = strawberry.field(
        description="p below 0.05 divided by the number of treatments (Bonferroni)."
    )


@strawberry.type
class ExperimentSignificance:
    metric: ExperimentMetric
    control: str
    significant: bool = strawberry.field(description="Whether any treatment differs.")
    leader: str | None = strawberry.field(description="The variant with the highest rate.")
    warning: str | None = strawberry.field(
        description="Set while the counts are too small for the test to be trusted."
    )
    comparisons: list[VariantComparison]


@strawberry.type(description="An A/B test of scenarios on one placement.")
class Experiment:
    id: str
    name: str
    scenario: str = strawberry.field(description="The placement (scenario) it splits.")
    status: ExperimentStatus
    metric: ExperimentMetric
    click_types: list[str]
    conversion_types: list[str]
    winner: str | None = strawberry.field(description="The variant promoted, once it is.")
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    record: strawberry.Private[ExperimentRecord]
    counts: strawberry.Private[list[tuple[int, int, int]] | None] = None

    @classmethod
    def of(cls, r: ExperimentRecord) -> Experiment:
        return cls(
            id=str(r.id),
            name=r.name,
            scenario=r.scenario,
            status=ExperimentStatus(r.status),
            metric=ExperimentMetric(r.metric),
            click_types=r.click_types,
            conversion_types=r.conversion_types,
            winner=r.winner,
            created_at=r.created_at,
            started_at=r.started_at,
            stopped_at=r.stopped_at,
            record=r,
        )

    async def _counts(self, info: Info) -> list[tuple[int, int, int]]:
        if self.counts is None:
            ctx = info.context
            self.counts = await ctx.store.placements.results(ctx.tenant, self.record)
        return self.counts

    def _successes(self, counts: list[tuple[int, int, int]]) -> list[int]:
        pick = 1 if self.metric == ExperimentMetric.CTR else 2
        return [c[pick] for c in counts]

    @strawberry.field
    async def variants(self, info: Info) -> list[ExperimentVariant]:
        counts = await self._counts(info)
        successes = self._successes(counts)
        out = []
        for v, (shown, clicks, conversions), hits in zip(
            self.record.variants, counts, successes, strict=True
        ):
            low, high = wilson(hits, shown)
            out.append(
                ExperimentVariant(
                    name=v["name"],
                    scenario=v["scenario"],
                    share=v["share"],
                    exposures=shown,
                    clicks=clicks,
                    conversions=conversions,
                    ctr=min(clicks, shown) / shown if shown else 0.0,
                    conversion_rate=min(conversions, shown) / shown if shown else 0.0,
                    interval=RateInterval(low=low, high=high),
                )
            )
        return out

    @strawberry.field
    async def significance(self, info: Info) -> ExperimentSignificance:
        counts = await self._counts(info)
        result = compare(self._successes(counts), [c[0] for c in counts])
        names = [v["name"] for v in self.record.variants]
        return ExperimentSignificance(
            metric=self.metric,
            control=names[0],
            significant=result.significant,
            leader=names[result.leader] if result.leader is not None else None,
            warning=result.warning,
            comparisons=[
                VariantComparison(
                    variant=names[c.variant],
                    lift=c.lift,
                    z_score=c.z,
                    p_value=c.p,
                    significant=c.significant,
                )
                for c in result.comparisons
            ],
        )


@strawberry.input
class ExperimentVariantInput:
    name: str
    scenario: str = strawberry.field(description="The scenario this variant serves.")
    share: float = strawberry.field(description="Its share of the users (0..1).")


@strawberry.input(
    description="A new experiment (a draft until started). The shares may sum to less than "
    "1: the other users get the placement's own scenario and are not counted."
)
class ExperimentCreateInput:
    name: str
    scenario: str = strawberry.field(description="The placement to split.")
    variants: list[ExperimentVariantInput] = strawberry.field(
        description="2..10 variants; the first is the control."
    )
    metric: ExperimentMetric = ExperimentMetric.CTR
    click_types: list[str] = strawberry.field(default_factory=lambda: ["click"])
    conversion_types: list[str] = strawberry.field(default_factory=lambda: ["purchase"])


@strawberry.input
class ExperimentIdInput:
    id: str


@strawberry.input
class ExperimentPromoteInput:
    id: str
    variant: str = strawberry.field(description="The name of the variant to promote.")


@strawberry.type
class ExperimentPayload:
    experiment: Experiment | None
    user_errors: list[UserError]


def _error(field: tuple[str, ...], message: str, code: ErrorCode) -> ExperimentPayload:
    return ExperimentPayload(
        experiment=None, user_errors=user_errors([InputError(field, message, code)])
    )


def _id(raw: str) -> int | None:
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None


async def _check_create(ctx: Context, i: ExperimentCreateInput) -> list[InputError]:
    errors: list[InputError] = []
    placements = ctx.store.placements

    def bad(message: str, *field: str, code: ErrorCode = ErrorCode.INVALID) -> None:
        errors.append(InputError(("input", *field), message, code))

    if not 1 <= len(i.name.strip()) <= 200:
        bad("1..200 characters", "name")
    elif (why := bad_string(i.name)) is not None:
        bad(f"the name {why}", "name")
    if (
        not NAME.match(i.scenario)
        or await placements.current_scenario(ctx.tenant, i.scenario) is None
    ):
        bad(f"no scenario {i.scenario!r}", "scenario", code=ErrorCode.NOT_FOUND)
    if not 2 <= len(i.variants) <= MAX_VARIANTS:
        bad(f"give 2..{MAX_VARIANTS} variants", "variants", code=ErrorCode.TOO_MANY)
    names = [v.name for v in i.variants]
    total = 0.0
    for n, v in enumerate(i.variants):
        if not 1 <= len(v.name) <= 100:
            bad("1..100 characters", "variants", str(n), "name")
        elif (why := bad_string(v.name)) is not None:
            bad(f"the name {why}", "variants", str(n), "name")
        elif names.index(v.name) != n:
            bad(f"two variants are named {v.name!r}", "variants", str(n), "name")
        if (
            not NAME.match(v.scenario)
            or await placements.current_scenario(ctx.tenant, v.scenario) is None
        ):
            bad(
                f"no scenario {v.scenario!r}",
                "variants",
                str(n),
                "scenario",
                code=ErrorCode.NOT_FOUND,
            )
        if not (math.isfinite(v.share) and 0.0 < v.share <= 1.0):
            bad("share must be above 0 and at most 1", "variants", str(n), "share")
        else:
            total += v.share
    if total > 1.0 + 1e-9:
        bad(f"the shares sum to {total:g}: at most 1", "variants")
    asked = {t for t in (*i.click_types, *i.conversion_types) if bad_string(t) is None}
    known = await ctx.store.interaction_types.cached(ctx.tenant, names=asked)
    for field, types in (("clickTypes", i.click_types), ("conversionTypes", i.conversion_types)):
        if not 1 <= len(types) <= 20:
            bad("give 1..20 interaction types", field)
        for n, t in enumerate(types):
            if t not in known:
                bad(f"unknown interaction type {t!r}", field, str(n), code=ErrorCode.UNKNOWN_TYPE)
    return errors


@strawberry.type
class ExperimentQueries:
    @strawberry.field(description="Your tenant's experiments, newest first (admin scope).")
    async def experiments(self, info: Info) -> list[Experiment]:
        ctx = info.context
        return [Experiment.of(r) for r in await ctx.store.placements.experiments(ctx.tenant)]

    @strawberry.field(description="One experiment (admin scope).")
    async def experiment(self, info: Info, id: str) -> Experiment | None:
        ctx = info.context
        key = _id(id)
        record = await ctx.store.placements.experiment(ctx.tenant, key) if key else None
        return Experiment.of(record) if record is not None else None


@strawberry.type
class ExperimentMutations:
    @strawberry.mutation(description="Define an experiment (admin scope); start it to run it.")
    async def experiment_create(
        self, info: Info, input: ExperimentCreateInput
    ) -> ExperimentPayload:
        ctx = info.context
        errors = await _check_create(ctx, input)
        if errors:
            return ExperimentPayload(experiment=None, user_errors=user_errors(errors))
        record = await ctx.store.placements.create_experiment(
            ctx.tenant,
            input.name.strip(),
            input.scenario,
            input.metric.value,
            [{"name": v.name, "scenario": v.scenario, "share": v.share} for v in input.variants],
            list(dict.fromkeys(input.click_types)),
            list(dict.fromkeys(input.conversion_types)),
        )
        return ExperimentPayload(experiment=Experiment.of(record), user_errors=[])

    @strawberry.mutation(
        description="Start a draft experiment (admin scope): from now on its scenario's "
        "requests are split among the variants. One experiment runs per scenario."
    )
    async def experiment_start(self, info: Info, input: ExperimentIdInput) -> ExperimentPayload:
        return await _move(info, input.id, RUNNING)

    @strawberry.mutation(description="Stop an experiment (admin scope); its counts stay.")
    async def experiment_stop(self, info: Info, input: ExperimentIdInput) -> ExperimentPayload:
        return await _move(info, input.id, STOPPED)

    @strawberry.mutation(
        description="Promote a variant (admin scope): its scenario's settings become a new "
        "version of the experiment's scenario, and the experiment stops."
    )
    async def experiment_promote(
        self, info: Info, input: ExperimentPromoteInput
    ) -> ExperimentPayload:
        ctx = info.context
        placements = ctx.store.placements
        key = _id(input.id)
        record = await placements.experiment(ctx.tenant, key) if key else None
        if record is None:
            return _error(("input", "id"), f"no experiment {input.id!r}", ErrorCode.NOT_FOUND)
        variant = next((v for v in record.variants if v["name"] == input.variant), None)
        if variant is None:
            names = ", ".join(v["name"] for v in record.variants)
            return _error(
                ("input", "variant"),
                f"no variant {input.variant!r}; it has {names}",
                ErrorCode.NOT_FOUND,
            )
        chosen = await placements.scenario(ctx.tenant, variant["scenario"])
        if chosen is None:
            return _error(
                ("input", "variant"),
                f"its scenario {variant['scenario']!r} was deleted",
                ErrorCode.NOT_FOUND,
            )
        if record.status != STOPPED:
            stopped, why = await placements.move_experiment(ctx.tenant, record.id, STOPPED)
            if stopped is None or why is not None:
                return _error(("input", "id"), why or "unknown experiment", ErrorCode.CONFLICT)
        if variant["scenario"] != record.scenario:
            await placements.put_scenario(
                ctx.tenant,
                record.scenario,
                chosen.definition,
                f"promoted from experiment {record.id} ({record.name}), variant {input.variant}",
            )
        await placements.set_winner(ctx.tenant, record.id, input.variant)
        final = await placements.experiment(ctx.tenant, record.id)
        assert final is not None
        return ExperimentPayload(experiment=Experiment.of(final), user_errors=[])


async def _move(info: Info, raw_id: str, status: str) -> ExperimentPayload:
    ctx = info.context
    key = _id(raw_id)
    if key is None:
        return _error(("input", "id"), f"no experiment {raw_id!r}", ErrorCode.NOT_FOUND)
    record, why = await ctx.store.placements.move_experiment(ctx.tenant, key, status)
    if record is None:
        return _error(("input", "id"), f"no experiment {raw_id!r}", ErrorCode.NOT_FOUND)
    if why is not None:
        return _error(("input", "id"), why, ErrorCode.CONFLICT)
    return ExperimentPayload(experiment=Experiment.of(record), user_errors=[])
