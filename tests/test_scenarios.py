"""Business rules and scenarios: boosts and buries, promoted items, category caps and
rotation on a request; named, versioned scenarios whose settings a request's own arguments
override."""

from __future__ import annotations

from typing import Any

from conftest import Caller
from recsys_helpers import genre_of, seed

from engines.serving.arrangement import place_promoted, spread_positions

LIST = """query($u: String!, $n: Int = 10, $b: [BoostInput!], $p: PromotedInput, $c: Int,
  $r: Float, $s: String, $f: RecommendationFilterInput, $a: [AlgorithmInput!], $cal: Float) {
  recommendations(userId: $u, first: $n, boosts: $b, promoted: $p, maxPerCategory: $c,
    rotation: $r, scenario: $s, filter: $f, algorithms: $a, calibration: $cal) {
    rank score item { itemId categories attributes }
    reasons { algorithm weight contribution } } }"""
UPSERT = """mutation($i: ScenarioUpsertInput!) { scenarioUpsert(input: $i) {
  scenario { name version definition createdAt } userErrors { field message code } } }"""
DELETE = """mutation($n: String!) { scenarioDelete(input: {name: $n}) {
  deletedName userErrors { field code } } }"""
READ = """query($n: String!, $v: Int) { scenario(name: $n, version: $v) { version definition } }"""
FAN = "horror-fan-1"


async def listed(gql: Any, **variables: Any) -> list[dict[str, Any]]:
    return (await gql(LIST, {"u": FAN, **variables}))["recommendations"]


def genres(recs: list[dict[str, Any]]) -> list[str]:
    return [genre_of(r["item"]["itemId"]) for r in recs]


def explained(rec: dict[str, Any]) -> bool:
    """The reasons still add up to the score."""
    return abs(sum(c["contribution"] for c in rec["reasons"]) - rec["score"]) < 1e-4


async def test_boosts_lift_and_bury_items_by_attributes(gql):
    await seed(gql)
    plain = await listed(gql)
    assert genres(plain).count("horror") >= 8  # the fan's own genre first
    scifi = {"filter": {"categories": ["scifi"]}, "factor": 50.0}
    # (boosts change the blended scores; calibration, on by default, would then pull the
    # list back toward the fan's history)
    boosted = await listed(gql, b=[scifi], cal=0)
    assert genres(boosted)[:3] == ["scifi"] * 3
    lifted = [r for r in boosted if genre_of(r["item"]["itemId"]) == "scifi"]
    assert all(any(c["algorithm"] == "boost" and c["contribution"] > 0 for c in r["reasons"])
               for r in lifted)
    assert all(explained(r) for r in boosted)
    # factor 0 removes: no item priced under 15 (k < 10), not even to fill the page
    cheap = {"filter": {"attributes": [{"key": "price", "lt": 15}]}, "factor": 0}
    pruned = await listed(gql, b=[cheap], n=20)
    assert len(pruned) == 20 and all(r["item"]["attributes"]["price"] >= 15 for r in pruned)
    # a bury sends horror below everything else
    buried = await listed(gql, b=[{"filter": {"categories": ["horror"]}, "factor": 0.001}],
                          cal=0)
    assert "horror" not in genres(buried)[:3]


async def test_promoted_items_take_their_share_at_spread_positions(gql):
    await seed(gql)
    promo = {"filter": {"categories": ["romance"]}, "share": 0.2}
    recs = await listed(gql, p=promo)
    assert len(recs) == 10 and len({r["item"]["itemId"] for r in recs}) == 10
    placed = [n for n, r in enumerate(recs)
              if any(c["algorithm"] == "promoted" for c in r["reasons"])]
    assert [genres(recs)[n] for n in placed] == ["romance", "romance"]
    assert placed == spread_positions(2, 10) == [3, 6]
    assert [r["rank"] for r in recs] == list(range(1, 11))


async def test_category_caps_hold_over_the_whole_list(gql):
    await seed(gql)
    capped = await listed(gql, c=3, n=9)
    assert len(capped) == 9
    assert all(genres(capped).count(g) == 3 for g in ("horror", "scifi", "romance"))
    assert genres(capped)[:3] == ["horror"] * 3  # the best of each first


async def test_rotation_moves_items_shown_again_and_again(gql):
    await seed(gql)
    first = await listed(gql, r=0.5, n=5)
    second = await listed(gql, r=0.5, n=5)
    ids = lambda recs: [r["item"]["itemId"] for r in recs]  # noqa: E731
    assert ids(second) != ids(first)
    shown_again = [r for r in second if r["item"]["itemId"] in ids(first)]
    assert all(any(c["algorithm"] == "rotation" for c in r["reasons"]) for r in shown_again)
    assert all(explained(r) for r in second)
    # without rotation nothing is remembered or changed
    assert ids(await listed(gql, n=5)) == ids(await listed(gql, n=5))


async def test_deleting_a_user_erases_the_items_shown_to_them(gql, store):
    await seed(gql)
    await listed(gql, r=0.5, n=5)
    assert await store.impressions.counts("default", FAN)  # remembered for rotation
    deleted = await gql("""mutation($u: String!) { userDelete(input: {id: $u})
                           { deletedUserId userErrors { code } } }""", {"u": FAN})
    assert deleted["userDelete"]["deletedUserId"] == FAN
    assert await store.impressions.counts("default", FAN) == {}


async def test_rules_are_checked(gql):
    await seed(gql, train=False)
    for variables, field in (
        ({"b": [{"filter": {}, "factor": -1}]}, "boosts.0.factor"),
        ({"p": {"filter": {}, "share": 1.5}}, "promoted.share"),
        ({"c": 0}, "maxPerCategory"),
        ({"r": 1.0}, "rotation"),
        ({"s": "nowhere"}, "scenario"),
    ):
        body = await gql(LIST, {"u": FAN, **variables}, expect_errors=True)
        assert body["errors"][0]["extensions"]["field"] == field, body
        assert "Unexpected" not in body["errors"][0]["message"]


def test_promoted_placement_keeps_promoted_items_ranked_on_merit():
    organic = [1, 2, 3, 4, 5, 6]
    page, placed = place_promoted(organic, [4, 9, 8], wanted=3, limit=6)
    assert len(page) == 6 and 4 in page and placed == {9, 8}
    assert 6 not in page  # the last organic, not a promoted one, gave way
    assert place_promoted([1, 2], [7], wanted=1, limit=5) == ([1, 7, 2], {7})


async def test_scenarios_are_versioned_and_requests_override_them(gql):
    await seed(gql)
    home = {"name": "home_feed", "description": "the home page",
            "filter": {"categories": ["scifi"]}, "maxPerCategory": 5,
            "boosts": [{"filter": {"attributes": [{"key": "year", "gte": 2010}]},
                        "factor": 2}]}
    made = (await gql(UPSERT, {"i": home}))["scenarioUpsert"]
    assert made["userErrors"] == [] and made["scenario"]["version"] == 1
    assert made["scenario"]["definition"]["filter"] == {"categories": ["scifi"]}
    recs = await listed(gql, s="home_feed")
    assert len(recs) == 5 and set(genres(recs)) == {"scifi"}  # filter and cap from it
    # the request's own filter wins over the scenario's
    mine = await listed(gql, s="home_feed", f={"categories": ["romance"]})
    assert set(genres(mine)) == {"romance"}
    # a new version is used at once; the old one stays readable
    again = (await gql(UPSERT, {"i": {**home, "filter": {"categories": ["horror"]}}}))
    assert again["scenarioUpsert"]["scenario"]["version"] == 2
    assert set(genres(await listed(gql, s="home_feed"))) == {"horror"}
    old = (await gql(READ, {"n": "home_feed", "v": 1}))["scenario"]
    assert old["definition"]["filter"] == {"categories": ["scifi"]}
    # deleted: requests naming it are refused, its versions stay
    assert (await gql(DELETE, {"n": "home_feed"}))["scenarioDelete"]["deletedName"] == "home_feed"
    body = await gql(LIST, {"u": FAN, "s": "home_feed"}, expect_errors=True)
    assert body["errors"][0]["extensions"] == {"code": "NOT_FOUND", "field": "scenario"}
    assert (await gql(READ, {"n": "home_feed", "v": 2}))["scenario"]["version"] == 2
    gone = (await gql(DELETE, {"n": "home_feed"}))["scenarioDelete"]["userErrors"]
    assert gone == [{"field": ["input", "name"], "code": "NOT_FOUND"}]


async def test_scenario_inputs_are_checked(gql):
    await seed(gql, train=False)
    bad = {"name": "no spaces", "algorithms": [{"name": "magic"}],
           "boosts": [{"filter": {"categories": ["x"] * 1001}, "factor": -2}],
           "diversity": 2}
    errors = await gql(UPSERT, {"i": bad})
    found = {tuple(e["field"]): e["code"] for e in errors["scenarioUpsert"]["userErrors"]}
    assert found[("input", "name")] == "INVALID"
    assert found[("input", "algorithms", "0", "name")] == "UNKNOWN_ALGORITHM"
    assert found[("input", "diversity")] == "INVALID"
    assert found[("input", "boosts", "0", "factor")] == "INVALID"
    assert found[("input", "boosts", "0", "filter", "categories")] == "TOO_MANY"
    assert (await gql(READ, {"n": "no spaces"}))["scenario"] is None


async def test_only_admin_keys_edit_scenarios_and_other_keys_use_them(secured, keys):
    admin = Caller(secured, keys["acme:admin"])
    writer = Caller(secured, keys["acme:write"])
    reader = Caller(secured, keys["acme:read"])
    home = {"name": "home", "filter": {"categories": ["scifi"]}}
    denied = await writer(UPSERT, {"i": home}, expect_errors=True)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await admin(UPSERT, {"i": home}))["scenarioUpsert"]["userErrors"] == []
    other = await Caller(secured, keys["globex:admin"])(READ, {"n": "home"})
    assert other["scenario"] is None  # another tenant's scenarios are not visible
    assert (await reader(LIST, {"u": "x", "s": "home"}))["recommendations"] == []
    missing = await reader(LIST, {"u": "x", "s": "elsewhere"}, expect_errors=True)
    assert missing["errors"][0]["extensions"] == {"code": "NOT_FOUND", "field": "scenario"}


PAGED = """query($u: String!, $n: Int!, $p: PromotedInput, $r: Float, $c: Int,
  $f: RecommendationFilterInput, $b: [BoostInput!], $seen: Boolean = false) {
  recommendations(userId: $u, first: $n, promoted: $p, rotation: $r, maxPerCategory: $c,
    filter: $f, boosts: $b, calibration: 0, excludeSeen: $seen) {
    recommendationId score item { itemId } reasons { algorithm contribution } } }"""


async def test_rules_hold_on_kept_pages_and_with_each_other(gql):
    await seed(gql)
    promo = {"filter": {"categories": ["romance"]}, "share": 0.1}
    # a list kept for its next pages (recommendationId asked for) places the promoted
    # share on each page as a plain list does
    paged = (await gql(PAGED, {"u": FAN, "n": 5, "p": promo}))["recommendations"]
    assert genres(paged).count("romance") == 1
    # promoted items obey the request's filter and the category caps
    only = (await gql(PAGED, {"u": FAN, "n": 6, "p": {**promo, "share": 0.5},
                              "f": {"categories": ["scifi", "horror"]}}))["recommendations"]
    assert "romance" not in genres(only)
    capped = (await gql(PAGED, {"u": FAN, "n": 6, "c": 1, "p": {**promo, "share": 0.5}}))
    assert all(genres(capped["recommendations"]).count(g) <= 1 for g in ("horror", "romance"))
    # promoted items keep their boosts' reasons: the reasons add up to the score
    boosted = (await gql(PAGED, {"u": FAN, "n": 6, "p": {**promo, "share": 0.5},
               "b": [{"filter": {"categories": ["romance"]}, "factor": 3}]}))["recommendations"]
    assert all(explained(r) for r in boosted)


async def test_rotation_stays_finite_and_counts_only_what_was_shown(gql):
    await seed(gql)
    for _ in range(30):  # near-total rotation, again and again: scores reach 0, no error
        recs = (await gql(PAGED, {"u": FAN, "n": 5, "r": 0.9999999}))["recommendations"]
        assert all(explained(r) for r in recs)
    # a kept list of 100 counts only its first page as shown
    await gql(PAGED, {"u": "scifi-fan-2", "n": 3, "r": 0.5, "seen": True})
    again = (await gql(PAGED, {"u": "scifi-fan-2", "n": 50, "r": 0.5, "seen": True}))[
        "recommendations"]
    rotated = [r for r in again if any(c["algorithm"] == "rotation" for c in r["reasons"])]
    assert len(rotated) == 3
    # an item the user acted on is not rotated, even when seen items are shown
    mine = (await gql(PAGED, {"u": FAN, "n": 5, "r": 0.5}))["recommendations"]
    record = """mutation($u: String!, $i: String!) { interactionRecord(input: {interaction:
      {userId: $u, itemId: $i, type: "purchase"}}) { recordedCount } }"""
    await gql(record, {"u": FAN, "i": mine[0]["item"]["itemId"]})
    after = (await gql(PAGED, {"u": FAN, "n": 30, "r": 0.5}))["recommendations"]
    bought = [r for r in after if r["item"]["itemId"] == mine[0]["item"]["itemId"]]
    assert bought and not any(c["algorithm"] == "rotation" for c in bought[0]["reasons"])


async def test_bad_rule_values_are_refused_with_their_field(gql):
    await seed(gql, train=False)
    for variables, field in (
        ({"b": [{"filter": {}, "factor": 1e-300}]}, "boosts.0.factor"),
        ({"b": [{"filter": {"excludeIds": ["x"]}, "factor": 2}]}, "boosts.0.filter"),
        ({"p": {"filter": {"excludeIds": ["x"]}, "share": 0.5}}, "promoted.filter"),
    ):
        body = await gql(LIST, {"u": FAN, **variables}, expect_errors=True)
        assert body["errors"][0]["extensions"]["field"] == field, body
    bad = {"name": "x", "description": "nul\u0000here",
           "algorithms": [{"name": "trending", "config": {"bogus": 1}},
                          {"name": "hybrid", "config": {"rank": 1}}]}
    errors = (await gql(UPSERT, {"i": bad}))["scenarioUpsert"]["userErrors"]
    found = {tuple(e["field"]): e["code"] for e in errors}
    assert found[("input", "description")] == "INVALID"
    assert found[("input", "algorithms", "0", "config")] == "INVALID_CONFIG"
    assert found[("input", "algorithms", "1", "config")] == "INVALID_CONFIG"
