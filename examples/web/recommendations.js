// @ts-check
// A page of your app showing one user's recommendations, with the reasons, kept live.
// It holds only a browser-safe `recommend` key and a user token that your backend minted
// for the signed-in user (`userTokenCreate`); Recograph must allow this page's origin for
// that key (`apiKeyUpdate(input: {prefix, allowedOrigins: ["https://shop.example"]})`).
//
// The example reads its settings from the address, e.g.
//   index.html?api=http://127.0.0.1:8000/graphql&key=rg_...&token=eyJ...&user=42
// In your app the backend renders them into the page instead.

/** @typedef {import("./generated/graphql").RecommendationsForUserQuery} RecommendationsForUserQuery */
/** @typedef {import("./generated/graphql").RecommendationsForUserQueryVariables} RecommendationsForUserQueryVariables */
/** @typedef {import("./generated/graphql").LiveRecommendationsSubscription} LiveRecommendationsSubscription */

const RECOMMENDATIONS = /* GraphQL */ `
  query RecommendationsForUser($userId: String!, $first: Int!) {
    recommendations(userId: $userId, first: $first) {
      rank
      score
      item { itemId title }
      reasons { algorithm contribution becauseItem { itemId title } }
    }
  }
`;

const LIVE = /* GraphQL */ `
  subscription LiveRecommendations($userId: String!, $first: Int!) {
    recommendationsUpdated(userId: $userId, first: $first) {
      causes
      recommendations {
        rank
        score
        item { itemId title }
        reasons { algorithm contribution becauseItem { itemId title } }
      }
    }
  }
`;

const params = new URLSearchParams(location.search);
const api = params.get("api") ?? "/graphql";
const key = params.get("key") ?? "";
const userToken = params.get("token") ?? "";
const userId = params.get("user") ?? "";
const first = Number(params.get("first") ?? "10");

const list = /** @type {HTMLOListElement} */ (document.getElementById("recommendations"));
const statusLine = /** @type {HTMLElement} */ (document.getElementById("status"));

/** @param {"loading" | "ready" | "error"} state @param {string} text */
function show(state, text) {
  statusLine.dataset.state = state;
  statusLine.textContent = text;
}

/** @param {RecommendationsForUserQueryVariables} variables @returns {Promise<RecommendationsForUserQuery>} */
async function fetchRecommendations(variables) {
  const response = await fetch(api, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Authorization: `Bearer ${key}`,
      "X-User-Token": userToken,
    },
    body: JSON.stringify({ query: RECOMMENDATIONS, variables }),
  });
  const body = await response.json();
  if (body.errors?.length) throw new Error(body.errors[0].message);
  return body.data;
}

/** @param {RecommendationsForUserQuery["recommendations"]} recommendations */
function render(recommendations) {
  list.replaceChildren(
    ...recommendations.map((r) => {
      const li = document.createElement("li");
      li.dataset.itemId = r.item?.itemId ?? "";
      const title = document.createElement("strong");
      title.textContent = r.item?.title ?? r.item?.itemId ?? "(removed item)";
      const why = document.createElement("div");
      why.className = "why";
      why.textContent = r.reasons
        .map((reason) =>
          reason.becauseItem
            ? `${reason.algorithm}: because you liked ${reason.becauseItem.title ?? reason.becauseItem.itemId}`
            : `${reason.algorithm} (${reason.contribution.toFixed(2)})`,
        )
        .join(" · ");
      li.append(title, why);
      return li;
    }),
  );
}

let shown = 0;
/** @param {RecommendationsForUserQuery["recommendations"]} recommendations */
function showList(recommendations) {
  render(recommendations);
  document.body.dataset.refreshes = String(++shown);
  show("ready", `Updated ${new Date().toLocaleTimeString()}`);
}

async function load() {
  try {
    showList((await fetchRecommendations({ userId, first })).recommendations);
    return true;
  } catch (error) {
    show("error", `Could not load recommendations: ${error instanceof Error ? error.message : error}`);
    return false;
  }
}

// Live: Recograph pushes the user's list again whenever their events (in this tab, on
// another device, from your backend), a new model or a catalogue change alter it.
function follow() {
  const url = new URL(api, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  // @ts-ignore: the global of graphql-ws's browser build
  const client = window.graphqlWs.createClient({
    url: url.href,
    connectionParams: { Authorization: `Bearer ${key}`, userToken },
  });
  client.subscribe(
    { query: LIVE, variables: { userId, first } },
    {
      /** @param {{ data?: LiveRecommendationsSubscription | null }} message */
      next: (message) => {
        const update = message.data?.recommendationsUpdated;
        if (!update) return;
        showList(update.recommendations);
        // the first message (INITIAL) says the subscription is live
        document.body.dataset.live = "subscribed";
      },
      error: (/** @type {unknown} */ error) => console.warn("live updates stopped", error),
      complete: () => {},
    },
  );
}

load().then((loaded) => loaded && follow());
