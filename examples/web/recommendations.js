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
/** @typedef {import("./generated/graphql").UserEventsSubscription} UserEventsSubscription */

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

const USER_EVENTS = /* GraphQL */ `
  subscription UserEvents($userId: String!) {
    interactionRecorded(userId: $userId) { itemId type }
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

let version = 0;
async function refresh() {
  const mine = ++version;
  try {
    const data = await fetchRecommendations({ userId, first });
    if (mine !== version) return; // a newer refresh started meanwhile
    render(data.recommendations);
    document.body.dataset.refreshes = String(mine);
    show("ready", `Updated ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    show("error", `Could not load recommendations: ${error instanceof Error ? error.message : error}`);
  }
}

// Live: when this user does something (in this tab, another device, or your backend),
// fetch the list again. Bursts of events are coalesced into one refresh.
function follow() {
  const url = new URL(api, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  // @ts-ignore: the global of graphql-ws's browser build
  const client = window.graphqlWs.createClient({
    url: url.href,
    connectionParams: { Authorization: `Bearer ${key}`, userToken },
  });
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let pending;
  client.subscribe(
    { query: USER_EVENTS, variables: { userId } },
    {
      /** @param {{ data?: UserEventsSubscription }} _event */
      next: (_event) => {
        clearTimeout(pending);
        pending = setTimeout(refresh, 200);
      },
      error: (/** @type {unknown} */ error) => console.warn("live updates stopped", error),
      complete: () => {},
    },
  );
  document.body.dataset.live = "subscribed";
}

refresh().then(follow);
