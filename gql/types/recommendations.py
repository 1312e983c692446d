"""Recommendations, similar items, trending and search: ranked lists, each item explained."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from engines.errors import ErrorCode
from engines.serving.answers import decode_answer, encode_answer
from engines.serving.blending import Blended
from engines.serving.experiments import assign
from engines.serving.search import FULLTEXT, TRIGRAM, VECTOR
from engines.serving.service import Selection
from gql.context import Context
from gql.errors import refused
from gql.relay import check_first
from gql.server.auth import forbid_other_users
from gql.types.filters import RecommendationFilterInput, rules_of
from gql.types.items import Item
from gql.types.scenarios import (
    BoostInput,
    Placement,
    PromotedInput,
    check_placement,
    load_placement,
)
from storage.repositories.placements import ExperimentRecord, served_by

Info = strawberry.Info[Context, None]
#: the algorithm behind the ``trending`` query (a built-in plugin)
TRENDING = "trending"


@strawberry.type(description="How one algorithm contributed to a recommendation.")
class Reason:
    algorithm: str
    weight: float = strawberry.field(description="The algorithm's weight in this request.")
    score: float = strawberry.field(description="Its score for the item, scaled to [0, 1].")
    contribution: float = strawberry.field(description="weight * score: its share of the total.")
    because_item: Item | None = strawberry.field(
        description="The item of the user's history that caused it, if known."
    )


# Items are fetched for a whole list at once (from the catalogue snapshot) and set as
# plain fields: resolving 20 items then costs no awaitable per item.
@strawberry.type
class Recommendation:
    rank: int
    score: float = strawberry.field(description="Blended score: the sum of contributions.")
    reasons: list[Reason]
    item: Item | None
    recommendation_id: str | None = strawberry.field(
        default=None,
        description="The list this item was served from, when asked for or when an "
        "experiment served it: send it with the user's events to attribute them. The list "
        "is kept for its next pages when `cursor` is asked for too.",
    )
    cursor: str | None = strawberry.field(
        default=None,
        description="Pass as `after` for the items that follow this one in the same list.",
    )
    experiment_id: str | None = strawberry.field(
        default=None, description="The experiment that served this list, if one did."
    )
    variant: str | None = strawberry.field(
        default=None, description="The experiment's variant that served this list."
    )


@strawberry.enum(
    description="A way `search` finds items. FULLTEXT: the text's words in titles, then tags "
    "and categories, then text; TRIGRAM: titles resembling the text (typos, unfinished "
    "words); VECTOR: items closest in meaning (the tenant's content vectors)."
)
class SearchRetriever(Enum):
    FULLTEXT = FULLTEXT
    TRIGRAM = TRIGRAM
    VECTOR = VECTOR


@strawberry.type(description="How one retriever found a search hit.")
class SearchMatch:
    retriever: SearchRetriever
    rank: int = strawberry.field(description="The hit's rank in that retriever (1 = best).")
    score: float = strawberry.field(
        description="That retriever's own score (text rank, trigram or cosine similarity)."
    )


@strawberry.type
class SearchHit:
    score: float = strawberry.field(
        description="Relevance, higher first: 2 + x when the title is the text, 1 + x when "
        "the item holds every word of it, else x; x in (0, 1] fuses the retrievers' ranks "
        "(reciprocal rank fusion, 1 = first in every retriever that ran)."
    )
    matches: list[SearchMatch] = strawberry.field(
        description="The retrievers that found the item, with its rank in each."
    )
    item: Item | None


@strawberry.input(description="An algorithm or preset to use, its weight and config changes.")
class AlgorithmInput:
    name: str
    weight: float = 1.0
    config: JSON | None = strawberry.field(
        default=None, description="Overrides of the algorithm's serving options."
    )

    def config_dict(self) -> dict[str, Any] | None:
        if self.config is None:
            return None
        if not isinstance(self.config, dict):
            raise refused(
                f"config of {self.name} must be an object", "algorithms", ErrorCode.INVALID_CONFIG
            )
        return dict(self.config)


def selection_of(algorithms: list[AlgorithmInput] | None) -> list[Selection] | None:
    if algorithms is None:
        return None
    if not algorithms:
        raise refused("give at least one algorithm, or leave `algorithms` out", "algorithms")
    return [Selection(a.name, a.weight, a.config_dict()) for a in algorithms]


async def items_of(info: Info, pks: Iterable[int]) -> dict[int, Item]:
    ctx = info.context
    records = await ctx.store.snapshots.records(ctx.tenant, pks)
    return {pk: Item.of(rec) for pk, rec in records.items()}


def check_user_request(
    ctx: Context,
    user_id: str,
    first: int,
    calibration: float | None,
    diversity: float | None = None,
) -> None:
    """The checks of a request for a user's list: page size, a browser key's user token,
    the calibration and diversity strengths."""
    check_first(first, ctx.settings.max_page_size)
    if (reason := forbid_other_users(ctx.auth, user_id)) is not None:
        raise refused(reason, "userId", ErrorCode.FORBIDDEN)
    if calibration is not None and not 0.0 <= calibration <= 1.0:
        raise refused("calibration must be between 0 and 1", "calibration")
    if diversity is not None and not 0.0 <= diversity <= 1.0:
        raise refused("diversity must be between 0 and 1", "diversity")


async def check_item_request(ctx: Context, item_id: str, first: int) -> None:
    """The checks of a request about one item: page size, and that a browser key (shipped
    in web pages) never learns that a hidden item exists."""
    check_first(first, ctx.settings.max_page_size)
    if ctx.auth.browser_only:
        record = await ctx.loaders.items_by_id.load(item_id)
        if record is None or record.hidden:
            raise refused(f"unknown item {item_id!r}", "itemId", ErrorCode.NOT_FOUND)


def selects(info: Info, name: str) -> bool:
    """Whether the request's selection under this field names ``name`` at any depth
    (fragments included), so work for fields nobody asked for can be skipped."""
    stack: list[Any] = list(info.selected_fields)
    while stack:
        node = stack.pop()
        if getattr(node, "name", None) == name:
            return True
        stack.extend(getattr(node, "selections", ()) or ())
    return False


async def recommendations_of(
    info: Info, blended: list[Blended], explain: bool = True
) -> list[Recommendation]:
    explain = explain and selects(info, "reasons")  # reasons cost more than the rest
    pks = {b.item_id for b in blended}
    if explain:
        pks |= {c.because_item for b in blended for c in b.contributions if c.because_item}
    items = await items_of(info, pks)
    return [
        Recommendation(
            rank=n + 1,
            score=b.score,
            item=items.get(b.item_id),
            reasons=[
                Reason(
                    algorithm=c.algorithm,
                    weight=c.weight,
                    score=c.normalised,
                    contribution=c.value,
                    because_item=items.get(c.because_item) if c.because_item else None,
                )
                for c in b.contributions
            ]
            if explain
            else [],
        )
        for n, b in enumerate(blended)
    ]


#: a list asked for with cursors keeps this many items for its next pages
PAGE_DEPTH = 100


def cursor_of(rid: str, position: int) -> str:
    return base64.urlsafe_b64encode(f"{rid}:{position}".encode()).decode()


def parse_cursor(cursor: str) -> tuple[str, int]:
    try:
        rid, _, position = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        offset = int(position)
    except (ValueError, UnicodeError):
        raise refused("after is not a cursor of a recommendation list", "after") from None
    if not rid or offset < 0:
        raise refused("after is not a cursor of a recommendation list", "after")
    return rid, offset


def paged_of(
    recs: list[Recommendation], rid: str, start: int, at: Sequence[int]
) -> list[Recommendation]:
    """Number a page of list ``rid`` from ``start`` and give each item its cursor: its own
    position in the kept list (``at``), so the next page starts right after it even when
    items before it were left out."""
    for n, (rec, position) in enumerate(zip(recs, at, strict=True)):
        rec.rank, rec.recommendation_id = start + n + 1, rid
        rec.cursor = cursor_of(rid, position + 1)
    return recs


async def label_variant(info: Info, recs: list[Recommendation], rid: str) -> None:
    """Name the experiment and variant of a list served by one."""
    if (served := served_by(rid)) is None:
        return
    ctx = info.context
    record = await ctx.store.placements.experiment(ctx.tenant, served[0])
    if record is not None and served[1] < len(record.variants):
        name_variant(recs, record, served[1])


def name_variant(recs: list[Recommendation], experiment: ExperimentRecord, n: int) -> None:
    for rec in recs:
        rec.experiment_id, rec.variant = str(experiment.id), experiment.variants[n]["name"]


async def next_page(
    info: Info, user_id: str, first: int, after: str, explain: bool
) -> list[Recommendation]:
    """The items after ``after`` in its kept list; items hidden or deleted since are left
    out."""
    ctx = info.context
    rid, offset = parse_cursor(after)
    raw = await ctx.store.pages.get(ctx.tenant, user_id, rid)
    if raw is None:
        raise refused(
            "this list is no longer kept (or is another user's): ask again without after",
            "after",
            ErrorCode.NOT_FOUND,
        )
    rest = decode_answer(raw)[offset:]
    records = await items_of(info, {b.item_id for b in rest})
    shown = [
        (offset + n, b)
        for n, b in enumerate(rest)
        if (r := records.get(b.item_id)) is not None and not r.hidden
    ][:first]
    page = await recommendations_of(info, [b for _, b in shown], explain)
    await label_variant(info, page, rid)
    return paged_of(page, rid, offset, [position for position, _ in shown])


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
        exclude_seen: Annotated[
            bool | None,
            strawberry.argument(description="Leave out items the user acted on (default)."),
        ] = None,
        explain: bool = True,
        calibration: Annotated[
            float | None,
            strawberry.argument(
                description="0..1: how closely the list's mix of categories follows the "
                "user's history (calibrated recommendations, Steck 2018); 0 turns it off. "
                "Default: RECOGRAPH_CALIBRATION."
            ),
        ] = None,
        diversity: Annotated[
            float | None,
            strawberry.argument(
                description="0..1: how strongly the list avoids items alike in content "
                "(maximal marginal relevance over the items' content vectors); 0 keeps the "
                "ranking. Default: RECOGRAPH_DIVERSITY."
            ),
        ] = None,
        after: Annotated[
            str | None,
            strawberry.argument(
                description="A `cursor` from a previous page: the items that follow it in "
                "that same ranked list (never one already shown), whatever happened since. "
                "The other arguments are then ignored but `first`."
            ),
        ] = None,
        scenario: Annotated[
            str | None,
            strawberry.argument(
                description="A scenario's settings for what the request leaves out; while "
                "an experiment runs on it, the user's variant's scenario instead."
            ),
        ] = None,
        boosts: Annotated[
            list[BoostInput] | None,
            strawberry.argument(description="Boost or bury items by attributes."),
        ] = None,
        promoted: Annotated[
            PromotedInput | None,
            strawberry.argument(description="A share of the list for promoted items."),
        ] = None,
        max_per_category: Annotated[
            int | None,
            strawberry.argument(description="At most this many items of any one category."),
        ] = None,
        rotation: Annotated[
            float | None,
            strawberry.argument(
                description="0..1: items served to the user before (and not acted on) lose "
                "this share of their score each time, so lists rotate; served items are "
                "remembered for RECOGRAPH_IMPRESSION_SECONDS."
            ),
        ] = None,
        cold_items: Annotated[
            float | None,
            strawberry.argument(
                description="0..1: share of the list for the best cold items by content "
                "(fewer than RECOGRAPH_COLD_ITEM_EVENTS events), placed at every "
                "(1/share)-th position with reason `cold_item`. Default: "
                "RECOGRAPH_COLD_ITEM_SHARE."
            ),
        ] = None,
    ) -> list[Recommendation]:
        ctx = info.context
        check_user_request(ctx, user_id, first, None)  # the rest: check_placement below
        asked = Placement(
            algorithms=selection_of(algorithms),
            filter=filter,
            boosts=boosts,
            promoted=promoted,
            max_per_category=max_per_category,
            diversity=diversity,
            calibration=calibration,
            exclude_seen=exclude_seen,
            rotation=rotation,
            cold_items=cold_items,
        )
        if errors := check_placement(asked, ctx.settings.max_batch_size):
            raise refused(errors[0].message, ".".join(errors[0].field), errors[0].code)
        if after is not None:
            return await next_page(info, user_id, first, after, explain)
        placement, rid = asked, None
        experiment, variant = None, None
        if scenario is not None:
            base = await load_placement(ctx, scenario)
            experiment = await ctx.store.placements.running(ctx.tenant, scenario)
            if experiment is not None:
                variant = assign(experiment.id, user_id, [v["share"] for v in experiment.variants])
            if experiment is not None and variant is not None:
                served = experiment.variants[variant]["scenario"]
                if served != scenario:
                    base = await load_placement(ctx, served)
                rid = experiment.recommendation_id(variant, user_id)
            placement = asked.over(base)
        paged = selects(info, "cursor")
        if rid is None and not paged and selects(info, "recommendationId"):
            rid = uuid.uuid4().hex  # an id to attribute events to; the list is not kept
        blended = await ctx.engine.recommend(
            ctx.tenant,
            user_id,
            max(first, PAGE_DEPTH) if paged else first,
            placement.algorithms,
            rules_of(placement.filter, ctx.settings.max_batch_size),
            exclude_seen=placement.exclude_seen is not False,
            exclude_items=(placement.filter.exclude_ids if placement.filter else None),
            calibration=placement.calibration,
            explain=explain and selects(info, "becauseItem"),
            diversity=placement.diversity,
            arrangement=placement.arrangement(ctx.settings.max_batch_size),
            page_size=first,
        )
        if experiment is not None and variant is not None:  # served: one exposure
            ctx.store.placements.exposed(ctx.tenant, experiment.id, variant)
        if not paged:
            page = await recommendations_of(info, blended, explain)
            if rid is not None:
                for rec in page:
                    rec.recommendation_id = rid
        else:
            rid = await ctx.store.pages.put(ctx.tenant, user_id, encode_answer(blended), rid)
            page = await recommendations_of(info, blended[:first], explain)
            page = paged_of(page, rid, 0, range(len(page)))
        if experiment is not None and variant is not None:
            name_variant(page, experiment, variant)
        return page

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
        await check_item_request(ctx, item_id, first)
        blended = await ctx.engine.similar_items(
            ctx.tenant,
            item_id,
            first,
            selection_of(algorithms),
            rules_of(filter, ctx.settings.max_batch_size),
        )
        return await recommendations_of(info, blended)

    @strawberry.field(
        description="Items most often used with this one in the same session (events of one "
        "user within RECOGRAPH_TOGETHER_MINUTES: bought together, watched together), counted "
        "online as events arrive; reason `together`, score = times seen together."
    )
    async def bought_together(
        self,
        info: Info,
        item_id: str,
        first: int = 10,
        filter: RecommendationFilterInput | None = None,
    ) -> list[Recommendation]:
        ctx = info.context
        await check_item_request(ctx, item_id, first)
        blended = await ctx.engine.together(
            ctx.tenant,
            item_id,
            first,
            rules_of(filter, ctx.settings.max_batch_size),
            exclude_items=(filter.exclude_ids or []) if filter else [],
        )
        return await recommendations_of(info, blended)

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
            raise refused("windowHours must be positive and below 1e6", "windowHours")
        config = {"window_hours": window_hours} if window_hours is not None else None
        if TRENDING not in (await ctx.engine.models(ctx.tenant)):
            return []
        blended = await ctx.engine.recommend(
            ctx.tenant,
            None,
            first,
            [Selection(TRENDING, 1.0, config)],
            rules_of(filter, ctx.settings.max_batch_size),
            exclude_seen=False,
            exclude_items=(filter.exclude_ids if filter else None),
            fill=False,
            explain=selects(info, "becauseItem"),
        )
        return await recommendations_of(info, blended)

    @strawberry.field(
        description="Items matching `text`: its words (full text, quotes and -exclusions "
        "included), titles resembling it (typos, unfinished words) and items close in meaning, "
        "fused by reciprocal rank."
    )
    async def search(
        self,
        info: Info,
        text: str,
        first: int = 10,
        filter: RecommendationFilterInput | None = None,
        retrievers: Annotated[
            list[SearchRetriever] | None,
            strawberry.argument(description="Only these retrievers (default: all)."),
        ] = None,
    ) -> list[SearchHit]:
        ctx = info.context
        check_first(first, ctx.settings.max_page_size)
        if not text.strip() or len(text) > 1000:
            raise refused("text must have 1..1000 characters", "text")
        rules = rules_of(filter, ctx.settings.max_batch_size)
        chosen = list(SearchRetriever) if retrievers is None else retrievers
        names = tuple(dict.fromkeys(str(r.value) for r in chosen))  # [] is refused by search
        excluded = (filter.exclude_ids or []) if filter else []
        hits = await ctx.engine.search(ctx.tenant, text, first, rules, names, excluded)
        items = await items_of(info, [h.pk for h in hits])
        return [
            SearchHit(
                score=h.score,
                matches=[
                    SearchMatch(retriever=SearchRetriever(m.retriever), rank=m.rank, score=m.score)
                    for m in h.matches
                ],
                item=items.get(h.pk),
            )
            for h in hits
        ]
