/* Recograph dashboard: hand-written, no framework, no build step.
 *
 * The page holds no data. It asks for an admin API key once (kept in sessionStorage, so it
 * dies with the tab), then reads everything from this service's own /graphql with
 * `Authorization: Bearer <key>`. Text from data (item titles, names, metric keys) is only
 * ever set with textContent or as SVG attribute values, never parsed as HTML. Charts are SVG
 * drawn here.
 */
(function () {
  "use strict";

  var STORAGE_KEY = "recograph.dashboard.key";
  var ENDPOINT = "/graphql";
  var SVG_NS = "http://www.w3.org/2000/svg";

  var MAIN_QUERY = [
    "query Dashboard($hours: Int!, $bucketMinutes: Int!) {",
    "  interactionVolume(hours: $hours, bucketMinutes: $bucketMinutes) { start events }",
    "  algorithms { name modelVersion trainedAt metrics }",
    "  trending(first: 10) { rank score item { itemId title } }",
    "}"
  ].join("\n");
  var VOLUME_QUERY = [
    "query DashboardVolume($hours: Int!, $bucketMinutes: Int!) {",
    "  interactionVolume(hours: $hours, bucketMinutes: $bucketMinutes) { start events }",
    "}"
  ].join("\n");
  var EXPERIMENTS_QUERY = [
    "query DashboardExperiments {",
    "  experiments {",
    "    id name scenario status metric startedAt stoppedAt winner",
    "    variants { name scenario share exposures clicks conversions ctr conversionRate",
    "      interval { low high } }",
    "    significance { metric control significant leader warning",
    "      comparisons { variant lift zScore pValue significant } }",
    "  }",
    "}"
  ].join("\n");

  var $ = function (id) { return document.getElementById(id); };
  var numberFormat = new Intl.NumberFormat(undefined);
  var generation = 0; // a forgotten key's answers that arrive late are dropped

  // ---------------------------------------------------------------- DOM helpers

  /** An element with attributes and children (strings become text nodes, never HTML). */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function svg(tag, attrs, children) {
    var node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name === "text") node.textContent = String(value);
      else node.setAttribute(name, String(value));
    });
  }

  function append(node, children) {
    if (children === null || children === undefined) return;
    (Array.isArray(children) ? children : [children]).forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
    });
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  // ---------------------------------------------------------------- formatting

  function count(n) {
    return numberFormat.format(n);
  }

  function percent(x, digits) {
    if (x === null || x === undefined || !isFinite(x)) return "—";
    return (x * 100).toFixed(digits === undefined ? 2 : digits) + "%";
  }

  function signedPercent(x) {
    if (x === null || x === undefined || !isFinite(x)) return "—";
    return (x > 0 ? "+" : "") + percent(x, 1);
  }

  function decimal(x) {
    if (typeof x !== "number" || !isFinite(x)) return String(x);
    if (Number.isInteger(x)) return count(x);
    var magnitude = Math.abs(x);
    if (magnitude !== 0 && (magnitude < 0.001 || magnitude >= 1e6)) return x.toExponential(3);
    return String(Number(x.toPrecision(4)));
  }

  function pValue(p) {
    if (typeof p !== "number" || !isFinite(p)) return "—";
    return p < 0.0001 ? "< 0.0001" : p.toFixed(4);
  }

  function when(iso, withDate) {
    if (!iso) return "—";
    var date = new Date(iso);
    if (isNaN(date.getTime())) return String(iso);
    var options = { hour: "2-digit", minute: "2-digit" };
    if (withDate !== false) {
      options.year = "numeric";
      options.month = "short";
      options.day = "numeric";
    }
    return date.toLocaleString(undefined, options);
  }

  function shortWhen(iso, daily) {
    var date = new Date(iso);
    if (daily) return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
    var time = date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
    if (date.getHours() === 0 && date.getMinutes() === 0) {
      return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
    }
    return time;
  }

  function shortDate(iso) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) return String(iso);
    return date.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  /** Metrics (JSON) as [key, text] pairs: nested objects become dotted keys. */
  function flatten(value, prefix, out, depth) {
    if (value === null || value === undefined) {
      if (prefix) out.push([prefix, "—"]);
    } else if (Array.isArray(value)) {
      var simple = value.every(function (v) { return v === null || typeof v !== "object"; });
      out.push([prefix, simple && value.length <= 6
        ? value.map(function (v) { return typeof v === "number" ? decimal(v) : String(v); }).join(", ")
        : value.length + " values"]);
    } else if (typeof value === "object") {
      var keys = Object.keys(value).sort();
      if (depth >= 3) {
        out.push([prefix, keys.length + " entries"]);
      } else {
        keys.forEach(function (k) {
          flatten(value[k], prefix ? prefix + "." + k : k, out, depth + 1);
        });
      }
    } else {
      out.push([prefix, typeof value === "number" ? decimal(value) : String(value)]);
    }
    return out;
  }

  // ---------------------------------------------------------------- the key

  function storedKey() {
    try {
      return window.sessionStorage.getItem(STORAGE_KEY);
    } catch (e) {
      return null;
    }
  }

  function storeKey(key) {
    try {
      window.sessionStorage.setItem(STORAGE_KEY, key);
    } catch (e) { /* storage refused: the key lives until the page is left */ }
    memoryKey = key;
  }

  function dropKey() {
    try {
      window.sessionStorage.removeItem(STORAGE_KEY);
    } catch (e) { /* nothing stored */ }
    memoryKey = null;
  }

  var memoryKey = null;

  function currentKey() {
    return storedKey() || memoryKey;
  }

  // ---------------------------------------------------------------- GraphQL

  function Failure(message, code) {
    this.message = message;
    this.code = code || "ERROR";
  }

  /** The key was refused (wrong, revoked, or without the admin scope). */
  function refusesKey(failure) {
    return failure.code === "UNAUTHENTICATED" || failure.code === "FORBIDDEN";
  }

  function firstError(errors) {
    var error = errors[0] || {};
    var code = (error.extensions && error.extensions.code) || "ERROR";
    return new Failure(String(error.message || "the request failed"), code);
  }

  /** POST a query; resolves {data, errors}, rejects a Failure when nothing came back. */
  function graphql(key, query, variables) {
    return fetch(ENDPOINT, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": "Bearer " + key
      },
      body: JSON.stringify({ query: query, variables: variables || {} }),
      credentials: "omit",
      cache: "no-store"
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        var errors = body && Array.isArray(body.errors) ? body.errors : [];
        var data = body && body.data ? body.data : null;
        if (!response.ok || !data) {
          if (errors.length) throw firstError(errors);
          throw new Failure("the service answered HTTP " + response.status, "HTTP_" + response.status);
        }
        return { data: data, errors: errors };
      });
    }, function (error) {
      throw new Failure("the service could not be reached (" + (error && error.message) + ")", "NETWORK");
    });
  }

  // ---------------------------------------------------------------- states

  function setState(state) {
    document.body.setAttribute("data-state", state);
  }

  function setStatus(text) {
    $("status").textContent = text;
  }

  function lock(message) {
    generation += 1;
    clearData();
    setState(message ? "refused" : "locked");
    show($("dashboard"), false);
    show($("session"), false);
    show($("unlock"), true);
    var error = $("key-error");
    error.textContent = message || "";
    show(error, Boolean(message));
    var input = $("key");
    input.value = "";
    input.focus();
  }

  function clearData() {
    clear($("volume-chart"));
    $("volume-chart").removeAttribute("data-total");
    $("volume-summary").textContent = "";
    clear($("models-rows"));
    clear($("top-items"));
    show($("top-empty"), false);
    clear($("experiments-body"));
    $("experiments").setAttribute("data-state", "idle");
    show($("load-error"), false);
    $("load-error").textContent = "";
  }

  function windowOf() {
    var parts = $("range").value.split(":");
    return { hours: Number(parts[0]), bucketMinutes: Number(parts[1]) };
  }

  function load() {
    var key = currentKey();
    if (!key) {
      lock();
      return;
    }
    var mine = ++generation;
    setState("loading");
    setStatus("Loading…");
    show($("load-error"), false);
    graphql(key, MAIN_QUERY, windowOf()).then(function (result) {
      if (mine !== generation) return;
      show($("unlock"), false);
      show($("dashboard"), true);
      show($("session"), true);
      renderVolume(result.data.interactionVolume);
      renderModels(result.data.algorithms);
      renderTop(result.data.trending);
      if (result.errors.length) showLoadError(firstError(result.errors));
      setState("ready");
      setStatus("Updated " + when(new Date().toISOString(), false));
      loadExperiments(key, mine);
    }, function (failure) {
      if (mine !== generation) return;
      if (refusesKey(failure)) {
        dropKey();
        lock(keyMessage(failure));
      } else if ($("dashboard").hidden) {
        dropKey();
        lock("The dashboard could not be loaded: " + failure.message);
      } else {
        showLoadError(failure);
        setState("error");
        setStatus("");
      }
    });
  }

  function keyMessage(failure) {
    if (failure.code === "FORBIDDEN") {
      return "This key may not open the dashboard (it needs the admin scope): " + failure.message;
    }
    return "The key was refused: " + failure.message;
  }

  function showLoadError(failure) {
    var node = $("load-error");
    node.textContent = "Part of the dashboard could not be loaded: " + failure.message;
    show(node, true);
  }

  function reloadVolume() {
    var key = currentKey();
    if (!key) return lock();
    var mine = generation;
    graphql(key, VOLUME_QUERY, windowOf()).then(function (result) {
      if (mine === generation) renderVolume(result.data.interactionVolume);
    }, function (failure) {
      if (mine !== generation) return;
      if (refusesKey(failure)) {
        dropKey();
        lock(keyMessage(failure));
      } else {
        showLoadError(failure);
      }
    });
  }

  function loadExperiments(key, mine) {
    var section = $("experiments");
    var body = $("experiments-body");
    section.setAttribute("data-state", "loading");
    clear(body);
    body.appendChild(el("p", { "class": "note", text: "Loading experiments…" }));
    graphql(key, EXPERIMENTS_QUERY).then(function (result) {
      if (mine !== generation) return;
      renderExperiments(result.data.experiments || []);
      if (result.errors.length) {
        body.appendChild(el("p", { "class": "error", role: "alert", text: firstError(result.errors).message }));
      }
      section.setAttribute("data-state", "ready");
    }, function (failure) {
      if (mine !== generation) return;
      clear(body);
      body.appendChild(el("p", {
        "class": "error", role: "alert",
        text: "The experiments could not be loaded: " + failure.message
      }));
      section.setAttribute("data-state", "error");
    });
  }

  // ---------------------------------------------------------------- (a) volume

  /** The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least n (> 0). */
  function niceCeiling(n) {
    var power = Math.pow(10, Math.floor(Math.log10(n)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * power >= n) return steps[i] * power;
    }
    return 10 * power;
  }

  function renderVolume(buckets) {
    var chart = $("volume-chart");
    clear(chart);
    var range = windowOf();
    var total = buckets.reduce(function (sum, b) { return sum + b.events; }, 0);
    var peak = buckets.reduce(function (best, b) { return b.events > best.events ? b : best; },
      { events: 0, start: null });
    chart.setAttribute("data-total", String(total));
    chart.setAttribute("data-buckets", String(buckets.length));
    var span = range.hours % 24 === 0 && range.hours > 48
      ? (range.hours / 24) + " days" : range.hours + " hours";
    $("volume-summary").textContent = count(total) + " events in the last " + span +
      (peak.start ? "; busiest bucket: " + count(peak.events) + " at " + when(peak.start) : "");

    var width = 760, height = 220, left = 48, right = 8, top = 10, bottom = 28;
    var plotW = width - left - right, plotH = height - top - bottom;
    var yMax = Math.max(4, niceCeiling(Math.max(peak.events, 1)));
    var step = plotW / Math.max(buckets.length, 1);
    var gap = step > 6 ? Math.min(4, step * 0.2) : 0;
    var root = svg("svg", {
      viewBox: "0 0 " + width + " " + height, "class": "volume-svg", role: "img",
      "aria-label": count(total) + " events in " + buckets.length + " buckets"
    });
    [0, 0.5, 1].forEach(function (fraction) {
      var y = top + plotH - fraction * plotH;
      root.appendChild(svg("line", { x1: left, x2: width - right, y1: y, y2: y, "class": "grid" }));
      root.appendChild(svg("text", { x: left - 6, y: y + 4, "class": "axis", "text-anchor": "end",
        text: decimal(yMax * fraction) }));
    });
    var daily = range.bucketMinutes >= 1440;
    var labelEvery = Math.max(1, Math.ceil(buckets.length / 8));
    buckets.forEach(function (bucket, i) {
      var h = bucket.events / yMax * plotH;
      var x = left + i * step + gap / 2;
      var bar = svg("rect", {
        x: x.toFixed(2), y: (top + plotH - h).toFixed(2),
        width: Math.max(step - gap, 0.5).toFixed(2), height: Math.max(h, 0).toFixed(2),
        "class": bucket.events ? "bar" : "bar empty",
        "data-start": bucket.start, "data-events": bucket.events
      });
      bar.appendChild(svg("title", { text: when(bucket.start) + ": " + count(bucket.events) + " events" }));
      root.appendChild(bar);
      if (i % labelEvery === 0) {
        root.appendChild(svg("text", {
          x: (left + i * step + step / 2).toFixed(2), y: height - 8, "class": "axis",
          "text-anchor": "middle", text: shortWhen(bucket.start, daily)
        }));
      }
    });
    root.appendChild(svg("line", { x1: left, x2: width - right, y1: top + plotH, y2: top + plotH, "class": "baseline" }));
    chart.appendChild(root);
  }

  // ---------------------------------------------------------------- (b) models

  function renderModels(algorithms) {
    var rows = $("models-rows");
    clear(rows);
    algorithms.forEach(function (a) {
      var trained = a.modelVersion !== null && a.modelVersion !== undefined;
      var metrics = el("dl", { "class": "metrics" });
      if (trained && a.metrics && typeof a.metrics === "object") {
        flatten(a.metrics, "", [], 0).forEach(function (pair) {
          metrics.appendChild(el("div", { "data-metric": pair[0] }, [el("dt", { text: pair[0].replace(/[._]/g, "$&\u200b") }), el("dd", { text: pair[1] })]));
        });
      }
      rows.appendChild(el("tr", { "data-algorithm": a.name, "class": trained ? "trained" : "untrained" }, [
        el("th", { scope: "row", text: a.name }),
        el("td", { "class": "version", text: trained ? "v" + a.modelVersion : "not trained" }),
        el("td", { "class": "when", text: trained ? shortDate(a.trainedAt) : "—", title: a.trainedAt || null }),
        el("td", null, trained ? metrics : "—")
      ]));
    });
  }

  // ---------------------------------------------------------------- (c) top items

  function renderTop(trending) {
    var list = $("top-items");
    clear(list);
    show($("top-empty"), trending.length === 0);
    var best = trending.reduce(function (m, r) { return Math.max(m, r.score); }, 0) || 1;
    trending.forEach(function (r) {
      var item = r.item || {};
      var title = item.title || item.itemId || "(deleted item)";
      var meter = el("meter", { min: 0, max: best, value: Math.max(r.score, 0), title: "score " + decimal(r.score) });
      list.appendChild(el("li", { "data-item-id": item.itemId || "" }, [
        el("span", { "class": "title", text: title, title: title }),
        el("span", { "class": "id", text: item.itemId || "" }),
        meter,
        el("span", { "class": "score", text: decimal(r.score) })
      ]));
    });
  }

  // ---------------------------------------------------------------- (d) experiments

  function rateOf(variant, metric) {
    return metric === "CONVERSION_RATE" ? variant.conversionRate : variant.ctr;
  }

  function metricName(metric) {
    return metric === "CONVERSION_RATE" ? "conversion rate" : "click-through rate";
  }

  function renderExperiments(experiments) {
    var body = $("experiments-body");
    clear(body);
    if (!experiments.length) {
      body.appendChild(el("p", { "class": "empty", text: "No experiments yet." }));
      return;
    }
    experiments.forEach(function (x) { body.appendChild(experimentCard(x)); });
  }

  function experimentCard(x) {
    var significance = x.significance || { comparisons: [] };
    var comparisons = {};
    (significance.comparisons || []).forEach(function (c) { comparisons[c.variant] = c; });
    var card = el("article", { "class": "experiment", "data-experiment-id": x.id, "data-status": x.status });
    card.appendChild(el("header", null, [
      el("h3", { text: x.name }),
      el("span", { "class": "badge status-" + String(x.status).toLowerCase(), text: x.status }),
      el("span", { "class": "meta", text: "scenario " + x.scenario + " · metric " + metricName(x.metric) +
        " · started " + when(x.startedAt) + (x.stoppedAt ? " · stopped " + when(x.stoppedAt) : "") +
        (x.winner ? " · winner " + x.winner : "") })
    ]));

    var verdict = el("p", { "class": "verdict " + (significance.significant ? "significant" : "not-significant") });
    verdict.setAttribute("data-significant", String(Boolean(significance.significant)));
    verdict.textContent = significance.significant
      ? "Significant: " + (significance.leader || "a variant") + " leads on " + metricName(significance.metric || x.metric) +
        " (control variant: " + (significance.control || "—") + "; 95% level)."
      : "No significant difference yet (control variant: " + (significance.control || "—") + ").";
    card.appendChild(verdict);
    if (significance.warning) {
      card.appendChild(el("p", { "class": "warning", role: "note", text: significance.warning }));
    }

    var table = el("table", { "class": "variants" }, [
      el("thead", null, el("tr", null, [
        "Variant", "Scenario", "Share", "Exposures", "Clicks", "Conversions", "CTR",
        "Conversion rate", "95% interval", "Lift", "p-value", "Significant"
      ].map(function (h) { return el("th", { text: h }); })))
    ]);
    var tbody = el("tbody");
    (x.variants || []).forEach(function (v) {
      var c = comparisons[v.name];
      var isControl = v.name === significance.control;
      tbody.appendChild(el("tr", { "data-variant": v.name, "class": isControl ? "control" : null }, [
        el("th", { scope: "row", text: v.name + (isControl ? " (control)" : "") }),
        el("td", { text: v.scenario }),
        el("td", { "class": "num", text: percent(v.share, 0) }),
        el("td", { "class": "num", "data-field": "exposures", text: count(v.exposures) }),
        el("td", { "class": "num", "data-field": "clicks", text: count(v.clicks) }),
        el("td", { "class": "num", "data-field": "conversions", text: count(v.conversions) }),
        el("td", { "class": "num", "data-field": "ctr", text: percent(v.ctr) }),
        el("td", { "class": "num", "data-field": "conversionRate", text: percent(v.conversionRate) }),
        el("td", { "class": "num", "data-field": "interval",
          text: v.interval ? percent(v.interval.low) + " – " + percent(v.interval.high) : "—" }),
        el("td", { "class": "num", text: c ? signedPercent(c.lift) : (isControl ? "control" : "—") }),
        el("td", { "class": "num", text: c ? pValue(c.pValue) : "—" }),
        el("td", { text: c ? (c.significant ? "yes" : "no") : "—" })
      ]));
    });
    table.appendChild(tbody);
    card.appendChild(el("div", { "class": "table-wrap" }, table));
    card.appendChild(intervalPlot(x, significance));
    return card;
  }

  /** Each variant's rate (dot) with its 95% interval (whiskers), on one axis. */
  function intervalPlot(x, significance) {
    var variants = x.variants || [];
    var rowH = 30, left = 150, right = 24, top = 10, axisH = 36, width = 1000;
    var height = top + rowH * Math.max(variants.length, 1) + axisH;
    var highest = variants.reduce(function (m, v) {
      return Math.max(m, v.interval ? v.interval.high : 0, rateOf(v, x.metric) || 0);
    }, 0);
    var xMax = highest > 0 ? Math.min(1, niceCeiling(highest * 1.05)) : 0.01;
    var plotW = width - left - right;
    var scale = function (r) { return left + Math.max(0, Math.min(r, xMax)) / xMax * plotW; };
    var root = svg("svg", {
      viewBox: "0 0 " + width + " " + height, "class": "interval-svg", role: "img",
      "aria-label": metricName(x.metric) + " of each variant with its 95% interval"
    });
    for (var t = 0; t <= 4; t++) {
      var value = xMax * t / 4, gx = scale(value);
      root.appendChild(svg("line", { x1: gx, x2: gx, y1: top, y2: height - axisH, "class": "grid" }));
      root.appendChild(svg("text", { x: gx, y: height - axisH + 16, "class": "axis", "text-anchor": "middle",
        text: percent(value, xMax < 0.04 ? 2 : 1) }));
    }
    variants.forEach(function (v, i) {
      var y = top + rowH * i + rowH / 2;
      var rate = rateOf(v, x.metric);
      var low = v.interval ? v.interval.low : rate, high = v.interval ? v.interval.high : rate;
      var isControl = v.name === significance.control;
      var isLeader = significance.significant && v.name === significance.leader;
      var group = svg("g", {
        "class": "variant" + (isControl ? " control" : "") + (isLeader ? " leader" : ""),
        "data-variant": v.name, "data-rate": rate, "data-low": low, "data-high": high
      });
      group.appendChild(svg("text", { x: left - 10, y: y + 4, "class": "label", "text-anchor": "end", text: v.name }));
      group.appendChild(svg("line", { x1: scale(low), x2: scale(high), y1: y, y2: y, "class": "whisker" }));
      group.appendChild(svg("line", { x1: scale(low), x2: scale(low), y1: y - 6, y2: y + 6, "class": "whisker" }));
      group.appendChild(svg("line", { x1: scale(high), x2: scale(high), y1: y - 6, y2: y + 6, "class": "whisker" }));
      var dot = svg("circle", { cx: scale(rate), cy: y, r: 5, "class": "dot" });
      dot.appendChild(svg("title", { text: v.name + ": " + percent(rate) + " (95% interval " + percent(low) + " – " + percent(high) + ")" }));
      group.appendChild(dot);
      root.appendChild(group);
    });
    root.appendChild(svg("text", { x: left + plotW / 2, y: height - 4, "class": "axis", "text-anchor": "middle",
      text: metricName(x.metric) + " (dot) with 95% interval" }));
    return el("figure", { "class": "interval-plot" }, root);
  }

  // ---------------------------------------------------------------- wiring

  function start() {
    $("key-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var key = $("key").value.trim().replace(/^bearer\s+/i, "");
      if (!/^[\x21-\x7e]{1,200}$/.test(key)) {
        lock("That is not an API key: paste the secret that starts with rg_.");
        return;
      }
      storeKey(key);
      $("key").value = "";
      load();
    });
    $("forget").addEventListener("click", function () {
      dropKey();
      lock();
    });
    $("refresh").addEventListener("click", load);
    $("range").addEventListener("change", reloadVolume);
    if (currentKey()) load();
    else lock();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
