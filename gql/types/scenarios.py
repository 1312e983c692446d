"""Scenarios: named, versioned presets of a placement ("home_feed") — algorithms and
weights, filter, business rules, diversity, calibration — used by
``recommendations(scenario:)``, where the request's own arguments override them.

A scenario's definition is kept as the plain JSON of its inputs (Python field names), so
the same translation into engine rules serves a scenario and a request's arguments.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from engines.errors import ErrorCode, InputError, RecographError
from engines.serving.arrangement import Arrangement, Boost, Promotion
from engines.serving.service import Selection
from gql.context import Context
from gql.errors import UserError, refused, user_errors
from gql.query_guard import bad_string
from gql.types.filters import AttributeFilterInput, RecommendationFilterInput, rules_of
from storage.repositories.placements import ScenarioRecord

Info = strawberry.Info[Context, None]
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
#: most boosts of one list, most algorithms of one scenario
MAX_BOOSTS = 20
MAX_ALGORITHMS = 20
MAX_BOOST_FACTOR = 1000.0
#: a smaller factor than this is a removal (0): scores would underflow
MIN_BOOST_FACTOR = 1e-6


@strawberry.input(
    description="Multiply the score of the items the filter selects: factor > 1 boosts, "
    "< 1 buries, 0 removes them (e.g. attributes stock < 1, factor 0)."
)
class BoostInput:
    filter: RecommendationFilterInput
    factor: float


@strawberry.input(
    description="A share of each list reserved for the items the filter selects: the best of "
    "them by the blend (else the most popular), at evenly spread positions, reason `promoted`."
)
class PromotedInput:
    filter: RecommendationFilterInput
    share: float = strawberry.field(description="0..1 of the list (at least one item).")


@strawberry.input(description="One algorithm or preset of a scenario, with its weight.")
class ScenarioAlgorithmInput:
    name: str
    weight: float = 1.0
    config: JSON | None = None


@strawberry.input(description="A scenario's new version: every field given replaces the old.")
class ScenarioUpsertInput:
    name: str = strawberry.field(description="Letters, digits, `_`, `.`, `-`; 1..100.")
    description: str | None = None
    algorithms: list[ScenarioAlgorithmInput] | None = None
    filter: RecommendationFilterInput | None = None
    boosts: list[BoostInput] | None = None
    promoted: PromotedInput | None = None
    max_per_category: int | None = None
    diversity: float | None = None
    calibration: float | None = None
    exclude_seen: bool | None = None
    rotation: float | None = strawberry.field(
        default=None,
        description="0..1: each earlier showing of an item to the user (within "
        "RECOGRAPH_IMPRESSION_SECONDS) multiplies its score by 1 - rotation.",
    )
    cold_items: float | None = strawberry.field(
        default=None,
        description="0..1: share of each list for the best cold items by content (items with "
        "fewer than RECOGRAPH_COLD_ITEM_EVENTS events), reason `cold_item`.",
    )


@strawberry.input
class ScenarioDeleteInput:
    name: str


@strawberry.type(description="A named, versioned preset of a placement.")
class Scenario:
    name: str
    version: int = strawberry.field(description="1 for the first, +1 with every change.")
    description: str | None
    created_at: datetime = strawberry.field(description="When this version was saved.")
    definition: JSON = strawberry.field(description="Its settings, as given.")

    @classmethod
    def of(cls, r: ScenarioRecord) -> Scenario:
        return cls(
            name=r.name,
            version=r.version,
            description=r.description,
            created_at=r.created_at,
            definition=JSON(_camel(r.definition)),
        )


@strawberry.type
class ScenarioPayload:
    scenario: Scenario | None
    user_errors: list[UserError]


@strawberry.type
class ScenarioDeletePayload:
    deleted_name: str | None
    user_errors: list[UserError]


# --- plain JSON of inputs, and back ------------------------------------------------------
def _plain(value: Any) -> Any:
    definition = getattr(type(value), "__strawberry_definition__", None)
    if definition is not None:
        return {
            f.python_name: _plain(getattr(value, f.python_name))
            for f in definition.fields
            if getattr(value, f.python_name) is not None
        }
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            _camel_key(k): _camel(v) if k not in ("config", "eq", "in_") else v
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def filter_of(plain: dict[str, Any] | None) -> RecommendationFilterInput | None:
    if plain is None:
        return None
    fields = dict(plain)
    if "attributes" in fields:
        fields["attributes"] = [AttributeFilterInput(**a) for a in fields["attributes"]]
    return RecommendationFilterInput(**fields)


@dataclasses.dataclass
class Placement:
    """What a recommendation request asks for, after its scenario (if any) filled in what
    the request left out."""

    algorithms: list[Selection] | None = None
    filter: RecommendationFilterInput | None = None
    boosts: list[BoostInput] | None = None
    promoted: PromotedInput | None = None
    max_per_category: int | None = None
    diversity: float | None = None
    calibration: float | None = None
    exclude_seen: bool | None = None
    rotation: float | None = None
    cold_items: float | None = None

    @classmethod
    def of_definition(cls, plain: dict[str, Any]) -> Placement:
        return cls(
            algorithms=[
                Selection(a["name"], float(a.get("weight", 1.0)), a.get("config"))
                for a in plain["algorithms"]
            ]
            if plain.get("algorithms")
            else None,
            filter=filter_of(plain.get("filter")),
            boosts=[
                BoostInput(
                    filter=filter_of(b["filter"]) or RecommendationFilterInput(), factor=b["factor"]
                )
                for b in plain["boosts"]
            ]
            if plain.get("boosts")
            else None,
            promoted=PromotedInput(
                filter=filter_of(plain["promoted"]["filter"]) or RecommendationFilterInput(),
                share=plain["promoted"]["share"],
            )
            if plain.get("promoted")
            else None,
            max_per_category=plain.get("max_per_category"),
            diversity=plain.get("diversity"),
            calibration=plain.get("calibration"),
            exclude_seen=plain.get("exclude_seen"),
            rotation=plain.get("rotation"),
            cold_items=plain.get("cold_items"),
        )

    def over(self, base: Placement) -> Placement:
        """These settings where given, ``base``'s elsewhere."""
        return Placement(
            **{
                f.name: getattr(self, f.name)
                if getattr(self, f.name) is not None
                else getattr(base, f.name)
                for f in dataclasses.fields(self)
            }
        )

    def arrangement(self, max_ids: int) -> Arrangement:
        return Arrangement(
            boosts=tuple(
                Boost(rules_of(b.filter, max_ids), float(b.factor)) for b in self.boosts or ()
            ),
            promoted=Promotion(rules_of(self.promoted.filter, max_ids), float(self.promoted.share))
            if self.promoted is not None
            else None,
            max_per_category=self.max_per_category,
            rotation=float(self.rotation or 0.0),
            cold_share=self.cold_items,
        )


def check_placement(p: Placement, max_ids: int, at: Sequence[str] = ()) -> list[InputError]:
    """Why these settings cannot be used (each error names its field under ``at``)."""
    errors: list[InputError] = []

    def bad(message: str, *field: str, code: ErrorCode = ErrorCode.INVALID) -> None:
        errors.append(InputError((*at, *field), message, code))

    for name in ("diversity", "calibration"):
        value = getattr(p, name)
        if value is not None and not 0.0 <= value <= 1.0:
            bad(f"{name} must be between 0 and 1", name)
    if p.rotation is not None and not 0.0 <= p.rotation < 1.0:
        bad("rotation must be at least 0 and below 1", "rotation")
    if p.cold_items is not None and not 0.0 <= p.cold_items <= 1.0:
        bad("coldItems must be between 0 and 1", "coldItems")
    if p.max_per_category is not None and not 1 <= p.max_per_category <= 1000:
        bad("maxPerCategory must be from 1 to 1000", "maxPerCategory")
    if len(p.boosts or ()) > MAX_BOOSTS:
        bad(f"at most {MAX_BOOSTS} boosts", "boosts", code=ErrorCode.TOO_MANY)
    for n, b in enumerate(p.boosts or ()):
        if not (
            math.isfinite(b.factor)
            and (b.factor == 0 or MIN_BOOST_FACTOR <= b.factor <= MAX_BOOST_FACTOR)
        ):
            bad(
                f"factor must be 0 (remove) or from {MIN_BOOST_FACTOR:g} to {MAX_BOOST_FACTOR:g}",
                "boosts",
                str(n),
                "factor",
            )
        if b.filter.exclude_ids:
            bad("excludeIds has no meaning in a boost's filter", "boosts", str(n), "filter")
    if p.promoted is not None and p.promoted.filter.exclude_ids:
        bad("excludeIds has no meaning in the promoted filter", "promoted", "filter")
    if p.promoted is not None and not (
        math.isfinite(p.promoted.share) and 0.0 < p.promoted.share <= 1.0
    ):
        bad("share must be above 0 and at most 1", "promoted", "share")
    filters = [("filter",), *(("boosts", str(n), "filter") for n in range(len(p.boosts or ())))]
    for where, f in zip(
        filters,
        [p.filter, *(b.filter for b in p.boosts or ())],
        strict=True,
    ):
        try:
            rules_of(f, max_ids)
        except RecographError as exc:  # its field is "filter.<name>"
            bad(exc.message, *where, *exc.field[0].split(".")[1:], code=exc.code)
    if p.promoted is not None:
        try:
            rules_of(p.promoted.filter, max_ids)
        except RecographError as exc:
            bad(exc.message, "promoted", "filter", *exc.field[0].split(".")[1:], code=exc.code)
    return errors


def _check_algorithms(
    ctx: Context, algorithms: Sequence[ScenarioAlgorithmInput]
) -> list[InputError]:
    registry = ctx.engine.registry
    errors = []
    if len(algorithms) > MAX_ALGORITHMS:
        return [
            InputError(("input", "algorithms"), f"at most {MAX_ALGORITHMS}", ErrorCode.TOO_MANY)
        ]
    for n, a in enumerate(algorithms):
        at = ("input", "algorithms", str(n))
        if a.name not in registry.algorithms and a.name not in registry.presets:
            errors.append(
                InputError(
                    (*at, "name"),
                    f"unknown algorithm {a.name!r}; known: {registry.known()}",
                    ErrorCode.UNKNOWN_ALGORITHM,
                )
            )
        if not (math.isfinite(a.weight) and 0 <= a.weight <= 1e6):
            errors.append(
                InputError(
                    (*at, "weight"), "weight must be from 0 to 1e6", ErrorCode.INVALID_WEIGHT
                )
            )
        if a.config is not None and not isinstance(a.config, dict):
            errors.append(
                InputError((*at, "config"), "config must be an object", ErrorCode.INVALID_CONFIG)
            )
        elif a.config and a.name in registry.algorithms:
            try:
                ctx.engine.check_config(a.name, dict(a.config))
            except RecographError as exc:
                errors.append(InputError((*at, "config"), exc.message, exc.code))
        elif a.config:
            errors.append(
                InputError(
                    (*at, "config"),
                    f"config is only accepted for algorithms, not {a.name!r}",
                    ErrorCode.INVALID_CONFIG,
                )
            )
    return errors


def bad_strings(value: Any, at: tuple[str, ...]) -> list[InputError]:
    """Strings (keys too) that PostgreSQL cannot store, each named by its path."""
    errors: list[InputError] = []
    stack: list[tuple[tuple[str, ...], Any]] = [(at, value)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, str) and (why := bad_string(v)) is not None:
            errors.append(InputError(path, why, ErrorCode.INVALID))
        elif isinstance(v, dict):
            for k, item in v.items():
                if (why := bad_string(str(k))) is not None:
                    errors.append(InputError(path, f"a key {why}", ErrorCode.INVALID))
                stack.append(((*path, _camel_key(str(k))), item))
        elif isinstance(v, list):
            stack.extend(((*path, str(n)), item) for n, item in enumerate(v))
    return errors


def _camel_key(key: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key.rstrip("_"))


def placement_of_input(i: ScenarioUpsertInput) -> Placement:
    return Placement(
        algorithms=[Selection(a.name, a.weight, a.config) for a in i.algorithms]  # type: ignore[arg-type]
        if i.algorithms
        else None,
        filter=i.filter,
        boosts=i.boosts,
        promoted=i.promoted,
        max_per_category=i.max_per_category,
        diversity=i.diversity,
        calibration=i.calibration,
        exclude_seen=i.exclude_seen,
        rotation=i.rotation,
        cold_items=i.cold_items,
    )


def definition_of(i: ScenarioUpsertInput) -> dict[str, Any]:
    fields = {
        f.name: getattr(i, f.name)
        for f in dataclasses.fields(i)
        if f.name not in ("name", "description") and getattr(i, f.name) is not None
    }
    return dict(_plain(fields))


async def load_placement(ctx: Context, name: str) -> Placement:
    """The current version of scenario ``name``, refused when there is none."""
    record = await ctx.store.placements.current_scenario(ctx.tenant, name)
    if record is None:
        raise refused(f"no scenario {name!r}", "scenario", ErrorCode.NOT_FOUND)
    return Placement.of_definition(record.definition)


@strawberry.type
class ScenarioQueries:
    @strawberry.field(description="Your tenant's scenarios, current versions (admin scope).")
    async def scenarios(self, info: Info) -> list[Scenario]:
        ctx = info.context
        return [Scenario.of(r) for r in await ctx.store.placements.scenarios(ctx.tenant)]

    @strawberry.field(
        description="A scenario: its current version, or the one asked for (admin scope)."
    )
    async def scenario(self, info: Info, name: str, version: int | None = None) -> Scenario | None:
        ctx = info.context
        record = await ctx.store.placements.scenario(ctx.tenant, name, version)
        return Scenario.of(record) if record is not None else None


@strawberry.type
class ScenarioMutations:
    @strawberry.mutation(
        description="Create a scenario, or save a new version of it (admin scope). Requests "
        "naming it use the new version at once, on every replica."
    )
    async def scenario_upsert(self, info: Info, input: ScenarioUpsertInput) -> ScenarioPayload:
        ctx = info.context
        errors: list[InputError] = []
        if not NAME.match(input.name):
            errors.append(
                InputError(
                    ("input", "name"), "use 1..100 letters, digits, _ . -", ErrorCode.INVALID
                )
            )
        if input.description is not None and len(input.description) > 1000:
            errors.append(
                InputError(("input", "description"), "at most 1000 characters", ErrorCode.TOO_LONG)
            )
        errors += _check_algorithms(ctx, input.algorithms or [])
        errors += bad_strings(_plain({"description": input.description}), ("input",))
        errors += bad_strings(definition_of(input), ("input",))
        errors += check_placement(
            placement_of_input(input), ctx.settings.max_batch_size, ("input",)
        )
        if errors:
            return ScenarioPayload(scenario=None, user_errors=user_errors(errors))
        record = await ctx.store.placements.put_scenario(
            ctx.tenant, input.name, definition_of(input), input.description
        )
        return ScenarioPayload(scenario=Scenario.of(record), user_errors=[])

    @strawberry.mutation(
        description="Delete a scenario (admin scope; its versions stay readable by number). "
        "Refused while an experiment runs on it or serves it."
    )
    async def scenario_delete(
        self, info: Info, input: ScenarioDeleteInput
    ) -> ScenarioDeletePayload:
        ctx = info.context
        why = await ctx.store.placements.delete_scenario(ctx.tenant, input.name)
        if why is None:
            return ScenarioDeletePayload(deleted_name=input.name, user_errors=[])
        code, message = (
            (ErrorCode.NOT_FOUND, f"no scenario {input.name!r}")
            if why == "unknown"
            else (ErrorCode.CONFLICT, why)
        )
        return ScenarioDeletePayload(
            deleted_name=None,
            user_errors=user_errors([InputError(("input", "name"), message, code)]),
        )
