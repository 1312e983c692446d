"""A/B experiments: a stable split of users into variants, each list named by its variant,
events attributed through ``recommendationId``, rates with intervals and a significance
test, one experiment per scenario, and promoting the winner."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from conftest import eventually
from recsys_helpers import seed
from test_online_state import replica  # noqa: F401  (a second API replica)

from engines.serving.experiments import assign, bucket, compare, wilson, z_test

UPSERT = """mutation($i: ScenarioUpsertInput!) { scenarioUpsert(input: $i) {
  scenario { version } userErrors { field message } } }"""
CREATE = """mutation($i: ExperimentCreateInput!) { experimentCreate(input: $i) {
  experiment { id status } userErrors { field message code } } }"""
MOVE = """mutation($id: String!) { %s(input: {id: $id}) {
  experiment { status startedAt stoppedAt } userErrors { field message code } } }"""
PROMOTE = """mutation($id: String!, $v: String!) {
  experimentPromote(input: {id: $id, variant: $v}) {
  experiment { status winner } userErrors { field message code } } }"""
SERVE = """query($u: String!) { recommendations(userId: $u, first: 5, scenario: "home") {
  recommendationId experimentId variant item { itemId } } }"""
RESULTS = """query($id: String!) { experiment(id: $id) { status metric winner
  variants { name scenario share exposures clicks conversions ctr conversionRate
    interval { low high } }
  significance { control significant leader warning
    comparisons { variant lift zScore pValue significant } } } }"""
RECORD = """mutation($i: InteractionsRecordInput!) { interactionsRecord(input: $i) {
  recordedCount userErrors { field message code } } }"""
READ_SCENARIO = """{ scenario(name: "home") { version definition } }"""
USERS = [f"{g}-fan-{u}" for g in ("scifi", "romance", "horror") for u in range(25)]


def test_assignment_is_stable_across_processes_and_follows_the_shares():
    # the same value in a new interpreter (Python's own hash is salted per process)
    code = "from engines.serving.experiments import bucket; print(repr(bucket(7, 'alice')))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert float(other.stdout) == bucket(7, "alice")
    users = [f"user-{n}" for n in range(20_000)]
    split = [assign(7, u, [0.2, 0.3]) for u in users]
    assert abs(split.count(0) / len(users) - 0.2) < 0.015
    assert abs(split.count(1) / len(users) - 0.3) < 0.015
    assert abs(split.count(None) / len(users) - 0.5) < 0.015  # outside: not in the test
    # experiments split users independently of each other
    same = sum(assign(7, u, [0.5, 0.5]) == assign(8, u, [0.5, 0.5]) for u in users)
    assert abs(same / len(users) - 0.5) < 0.02


def test_statistics_match_textbook_values():
    z, p = z_test(100, 1000, 130, 1000)
    assert z == pytest.approx(2.1027, abs=1e-3) and p == pytest.approx(0.0355, abs=1e-3)
    assert wilson(10, 100) == pytest.approx((0.0552, 0.1744), abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)
    # two treatments share the 5% level: p 0.0355 is not below 0.025
    result = compare([100, 130, 100], [1000, 1000, 1000])
    assert not result.comparisons[0].significant and result.leader == 1
    assert result.warning is None
    assert compare([1, 2], [10, 10]).warning is not None  # too few to trust


async def setup_experiment(gql: Any, shares: tuple[float, float] = (0.5, 0.5)) -> str:
    await seed(gql)
    for name, algorithm in (("home", "item_knn"), ("home-trending", "trending")):
        made = await gql(UPSERT, {"i": {"name": name, "algorithms": [{"name": algorithm}],
                                        "calibration": 0}})
        assert made["scenarioUpsert"]["userErrors"] == []
    created = (await gql(CREATE, {"i": {
        "name": "trending on the home page", "scenario": "home",
        "variants": [{"name": "control", "scenario": "home", "share": shares[0]},
                     {"name": "trending", "scenario": "home-trending", "share": shares[1]}],
    }}))["experimentCreate"]
    assert created["userErrors"] == [] and created["experiment"]["status"] == "DRAFT"
    return str(created["experiment"]["id"])


async def test_an_experiment_splits_users_and_attributes_their_events(gql):
    exp = await setup_experiment(gql)
    before = (await gql(SERVE, {"u": USERS[0]}))["recommendations"]
    assert before[0]["variant"] is None and before[0]["experimentId"] is None  # a draft
    started = (await gql(MOVE % "experimentStart", {"id": exp}))["experimentStart"]
    assert started["experiment"]["status"] == "RUNNING" and started["experiment"]["startedAt"]
    served: dict[str, list[dict[str, Any]]] = {}
    for user in USERS:
        lists = [(await gql(SERVE, {"u": user}))["recommendations"] for _ in range(2)]
        variants = {r["variant"] for recs in lists for r in recs}
        assert len(variants) == 1  # a user never switches variant
        ids = [recs[0]["recommendationId"] for recs in lists]
        assert ids[0] != ids[1] and all(r["experimentId"] == exp for r in lists[0])
        served[user] = lists[0]
    by_variant = {v: [u for u in USERS if served[u][0]["variant"] == v]
                  for v in ("control", "trending")}
    assert by_variant["control"] and by_variant["trending"]
    # each variant serves its own scenario: the trending lists come from the top of
    # trending (less what each user has seen: at most 8 items)
    top = {r["item"]["itemId"] for r in (await gql("""{ trending(first: 13) {
      item { itemId } } }"""))["trending"]}
    assert all(r["item"]["itemId"] in top for u in by_variant["trending"] for r in served[u])
    # users of "trending" click on their first list, a few also buy; control users don't
    events = []
    for n, user in enumerate(by_variant["trending"]):
        rec = served[user][0]
        events.append({"userId": user, "itemId": rec["item"]["itemId"], "type": "click",
                       "recommendationId": rec["recommendationId"]})
        if n % 2 == 0:
            events.append({"userId": user, "itemId": rec["item"]["itemId"],
                           "type": "purchase", "recommendationId": rec["recommendationId"]})
    recorded = (await gql(RECORD, {"i": {"interactions": events}}))["interactionsRecord"]
    assert recorded["userErrors"] == []
    result = (await gql(RESULTS, {"id": exp}))["experiment"]
    control, treated = result["variants"]
    assert control["exposures"] == 2 * len(by_variant["control"])
    assert treated["exposures"] == 2 * len(by_variant["trending"])
    assert control["clicks"] == 0 and treated["clicks"] == len(by_variant["trending"])
    assert treated["conversions"] == (len(by_variant["trending"]) + 1) // 2
    assert treated["ctr"] == pytest.approx(0.5)  # one of its two lists each
    assert treated["interval"]["low"] < 0.5 < treated["interval"]["high"]
    significance = result["significance"]
    assert significance["control"] == "control" and significance["leader"] == "trending"
    assert significance["comparisons"][0]["variant"] == "trending"
    assert significance["comparisons"][0]["pValue"] < 0.05
    assert significance["warning"]  # fewer than 100 lists per variant
    # promote the winner: its settings become the scenario's next version, the test stops
    promoted = (await gql(PROMOTE, {"id": exp, "v": "trending"}))["experimentPromote"]
    assert promoted["experiment"] == {"status": "STOPPED", "winner": "TRENDING".lower()}
    home = (await gql(READ_SCENARIO))["scenario"]
    assert home["version"] == 2 and home["definition"]["algorithms"][0]["name"] == "trending"
    after = (await gql(SERVE, {"u": USERS[0]}))["recommendations"]
    assert after[0]["variant"] is None


async def test_one_experiment_per_scenario_and_inputs_are_checked(gql):
    exp = await setup_experiment(gql, shares=(0.1, 0.1))
    assert (await gql(MOVE % "experimentStart", {"id": exp}))["experimentStart"]["userErrors"] == []
    second = (await gql(CREATE, {"i": {
        "name": "again", "scenario": "home",
        "variants": [{"name": "a", "scenario": "home", "share": 0.5},
                     {"name": "b", "scenario": "home-trending", "share": 0.5}]}}))
    other = second["experimentCreate"]["experiment"]["id"]
    refused = (await gql(MOVE % "experimentStart", {"id": other}))["experimentStart"]
    assert refused["userErrors"][0]["code"] == "CONFLICT"
    again = (await gql(MOVE % "experimentStart", {"id": exp}))["experimentStart"]
    assert again["userErrors"][0]["code"] == "CONFLICT"  # already running
    missing = (await gql(MOVE % "experimentStop", {"id": "999"}))["experimentStop"]
    assert missing["userErrors"] == [{"field": ["input", "id"], "message": "no experiment '999'",
                                      "code": "NOT_FOUND"}]
    # 80% of users are outside the 10% + 10% split: they get the scenario, uncounted
    outside = [u for u in USERS if assign(int(exp), u, [0.1, 0.1]) is None]
    recs = (await gql(SERVE, {"u": outside[0]}))["recommendations"]
    assert recs and recs[0]["variant"] is None
    bad = (await gql(CREATE, {"i": {
        "name": "", "scenario": "nowhere", "clickTypes": ["tap"],
        "variants": [{"name": "a", "scenario": "home", "share": 0.7},
                     {"name": "a", "scenario": "gone", "share": 0.7}]}}))
    found = {tuple(e["field"]): e["code"] for e in bad["experimentCreate"]["userErrors"]}
    assert found == {
        ("input", "name"): "INVALID",
        ("input", "scenario"): "NOT_FOUND",
        ("input", "variants", "1", "name"): "INVALID",
        ("input", "variants", "1", "scenario"): "NOT_FOUND",
        ("input", "variants"): "INVALID",  # shares sum to 1.4
        ("input", "clickTypes", "0"): "UNKNOWN_TYPE",
    }
    # a scenario an experiment runs on cannot be deleted
    deleted = await gql("""mutation { scenarioDelete(input: {name: "home-trending"}) {
      userErrors { code } } }""")
    assert deleted["scenarioDelete"]["userErrors"] == [{"code": "CONFLICT"}]


async def test_results_stay_sane_and_starts_check_their_scenarios(gql):
    exp = await setup_experiment(gql)
    assert (await gql(MOVE % "experimentStart", {"id": exp}))["experimentStart"]["userErrors"] == []
    rid = (await gql(SERVE, {"u": USERS[0]}))["recommendations"][0]["recommendationId"]
    # a client (a browser key too) cannot invent lists or clicks: an id names a list only
    # for the user it was served to. A forged one is reported on its field and the event is
    # kept without it: it moves no experiment's numbers
    prefix, token = rid.split(".")
    fakes = [f"x{exp}v0.{k:040x}" for k in range(30)]
    fakes += [f"x{exp}v0", f"x{exp}v1", "x" + "9" * 30 + "v0.ab", f"x{exp}v0{prefix[-1]}.{token}",
              rid.replace(prefix, prefix[:-1] + "0" + prefix[-1]), rid]  # the last: other user
    forged = [{"userId": USERS[1], "itemId": "scifi-1", "type": "click", "recommendationId": f}
              for f in fakes]
    forged.append({"userId": USERS[0], "itemId": "scifi-1", "type": "click",
                   "recommendationId": rid})
    recorded = (await gql(RECORD, {"i": {"interactions": forged}}))["interactionsRecord"]
    assert recorded["recordedCount"] == len(forged)
    assert [e["field"] for e in recorded["userErrors"]] == [
        ["input", "interactions", str(k), "recommendationId"] for k in range(len(fakes))]
    assert {e["code"] for e in recorded["userErrors"]} == {"INVALID"}
    result = (await gql(RESULTS, {"id": exp}))["experiment"]
    assert sum(v["clicks"] for v in result["variants"]) == 1
    assert sum(v["conversions"] for v in result["variants"]) == 0
    assert all(0 <= v["ctr"] <= 1 and v["interval"]["high"] <= 1 for v in result["variants"])
    assert (await gql(RESULTS, {"id": "\u00b2"}))["experiment"] is None
    # a draft whose variant's scenario was deleted cannot start
    await gql(MOVE % "experimentStop", {"id": exp})
    draft = (await gql(CREATE, {"i": {
        "name": "later", "scenario": "home",
        "variants": [{"name": "a", "scenario": "home", "share": 0.5},
                     {"name": "b", "scenario": "home-trending", "share": 0.5}]}}))
    later = draft["experimentCreate"]["experiment"]["id"]
    gone = await gql("""mutation { scenarioDelete(input: {name: "home-trending"}) {
      deletedName } }""")
    assert gone["scenarioDelete"]["deletedName"] == "home-trending"
    refused = (await gql(MOVE % "experimentStart", {"id": later}))["experimentStart"]
    assert refused["userErrors"][0]["code"] == "CONFLICT"
    assert "home-trending" in refused["userErrors"][0]["message"]
    odd = await gql(CREATE, {"i": {
        "name": "nul\u0000", "scenario": "home",
        "variants": [{"name": "a", "scenario": "home", "share": 0.5},
                     {"name": "b\u0000", "scenario": "home", "share": 0.5}],
        "clickTypes": ["cl\u0000ick"]}})
    found = {tuple(e["field"]) for e in odd["experimentCreate"]["userErrors"]}
    assert {("input", "name"), ("input", "variants", "1", "name"),
            ("input", "clickTypes", "0")} <= found


async def test_every_replica_follows_a_started_experiment_at_once(gql, replica):  # noqa: F811
    exp = await setup_experiment(gql)
    # the other replica has read (and cached) the scenario with no experiment running
    users = [u for u in USERS if assign(int(exp), u, [0.5, 0.5]) == 1]
    recs = (await replica(SERVE, {"u": users[0]}))["recommendations"]
    assert recs[0]["variant"] is None
    await gql(MOVE % "experimentStart", {"id": exp})

    async def served_by_the_variant() -> bool:
        again = (await replica(SERVE, {"u": users[0]}))["recommendations"]
        return bool(again[0]["variant"] == "trending")

    # told through pub/sub, well before its cached copy would expire (5 s)
    await eventually(served_by_the_variant, within=2.5)
