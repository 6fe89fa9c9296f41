// One edge node (/fleet/{node}): state and reasons, latest health, devices, health graph.
// Sections are built once and refilled on each refresh, so the range switch keeps focus.
import { ApiError, api, el, fmtNumber, fmtTime, lang, page, svg, t } from "./common.js";
import {
  REFRESH_MS, configText, devicesCell, fmtBytes, fmtOffset, onlineText, reasonItem, statePill, timeAgo,
} from "./fleet.js";

const nodeId = page.node;
const root = document.getElementById("node-root");
const errorLine = document.getElementById("node-error");
const locale = lang === "id" ? "id-ID" : "en-GB";
const WINDOWS = [1, 6, 24];
let hours = 6;
let loaded = false;

const sections = {
  summary: el("section", { class: "node-summary card", "aria-label": t("node.reasons"), "data-testid": "node-summary" }),
  health: el("section", { class: "node-health", "aria-labelledby": "health-title" }),
  devices: el("section", { class: "node-devices", "aria-labelledby": "devices-title" }),
  graph: el("section", { class: "node-graph", "aria-labelledby": "graph-title" }),
};
const graphBody = el("div", { "data-testid": "health-graph" });

function fmtUptime(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  return `${m} min ${s % 60} s`;
}

function renderSummary(node) {
  const facts = [
    ["fleet.col.online", onlineText(node.online)],
    ["fleet.col.last_seen", timeAgo(node.last_seen)],
    ["fleet.col.software", node.sw_version || "—"],
    ["fleet.col.config", configText(node)],
    ["fleet.col.devices", devicesCell(node)],
    ["node.location", [node.site, node.floors.join(", ")].filter(Boolean).join(" · ") || "—"],
  ];
  sections.summary.replaceChildren(
    el("div", { class: "node-state" }, statePill(node.state)),
    node.reasons.length
      ? el("ul", { class: "reasons", "aria-label": t("node.reasons"), "data-testid": "reasons" },
        node.reasons.map((r) => reasonItem(r)))
      : el("p", { class: "muted" }, t("node.no_reasons")),
    el("dl", { class: "facts" }, facts.map(([key, value]) => el("div", {}, el("dt", {}, t(key)), el("dd", {}, value)))),
  );
}

function renderHealth(node) {
  const h = node.health;
  const title = el("h2", { id: "health-title" }, t("node.health.title"));
  if (!h) {
    sections.health.replaceChildren(title, el("p", { class: "muted" }, t("node.health.none")));
    return;
  }
  const tiles = [
    ["node.health.cpu", h.cpu_pct == null ? "—" : `${fmtNumber(h.cpu_pct, 1)} %`],
    ["node.health.memory", fmtBytes(h.mem_available_bytes)],
    ["node.health.rss", fmtBytes(h.rss_bytes)],
    ["node.health.disk", fmtBytes(h.disk_free_bytes)],
    ["node.health.temperature", h.temperature_c == null ? "—" : `${fmtNumber(h.temperature_c, 1)} °C`],
    ["node.health.uptime", fmtUptime(h.uptime_s)],
    ["node.health.outbox", fmtNumber(node.outbox_depth)],
    ["node.health.dropped", fmtNumber(h.dropped_telemetry)],
    ["node.health.clock", fmtOffset(node.clock_offset_s)],
    ["node.health.reconnects", fmtNumber(h.mqtt_reconnects)],
  ];
  sections.health.replaceChildren(
    title,
    el("p", { class: "muted" }, t("node.health.received", { time: "" }), timeAgo(h.received_at)),
    el("dl", { class: "tiles", "data-testid": "health" },
      tiles.map(([key, value]) => el("div", { class: "tile" }, el("dt", {}, t(key)), el("dd", {}, value)))),
    el("h3", {}, t("node.health.alarms")),
    node.alarms.length
      ? el("ul", { class: "alarms", "data-testid": "alarms" }, node.alarms.map((a) => el("li", { lang: "en" }, a)))
      : el("p", { class: "muted" }, t("common.none")),
  );
}

/** Desk units (their connection state lives with the desks) and the other devices
 *  (device_health) in one list; a unit that never reported shows "unknown". */
function deviceRows(node) {
  const rows = node.devices.map((d) => ({ ...d }));
  const known = new Set(rows.map((d) => d.device));
  const units = node.desk_units.map((u) => ({
    device: u.desk, kind: "deskunit", online: u.online, rejected_frames: null,
    last_reading_at: u.last_change_at, battery_pct: null,
    detail: [u.unit, u.firmware].filter(Boolean).join(" · ") || null }));
  for (const unit of units) if (!known.has(unit.device)) rows.push(unit);
  return rows.sort((a, b) => a.kind.localeCompare(b.kind) || a.device.localeCompare(b.device));
}

function battery(d) {
  if (d.battery_pct === null || d.battery_pct === undefined) return "—";
  const low = d.battery_pct < 20;
  return el("span", { class: low ? "battery low" : "battery" },
    `${d.battery_pct} %`, low ? ` (${t("node.battery_low")})` : "");
}

function renderDevices(node) {
  const rows = deviceRows(node);
  const title = el("h2", { id: "devices-title" }, t("node.devices.title"), ` (${rows.length})`);
  if (!rows.length) {
    sections.devices.replaceChildren(title, el("p", { class: "muted" }, t("node.devices.none")));
    return;
  }
  const cols = ["device", "kind", "online", "rejected", "last_reading", "battery", "detail"];
  const td = (col, ...children) => el("td", { dataset: { label: t(`node.col.${col}`), col } }, ...children);
  sections.devices.replaceChildren(title, el("div", { class: "table-wrap" }, el("table",
    { class: "device-table", "data-testid": "devices-table" },
    el("thead", {}, el("tr", {}, cols.map((c) => el("th", { scope: "col" }, t(`node.col.${c}`))))),
    el("tbody", {}, rows.map((d) => el("tr", { dataset: { device: d.device } },
      el("th", { scope: "row", dataset: { label: t("node.col.device"), col: "device" } }, d.device),
      td("kind", t(`node.kind.${d.kind}`).startsWith("[") ? d.kind : t(`node.kind.${d.kind}`)),
      td("online", d.online === null || d.online === undefined
        ? el("span", { class: "muted" }, t("node.unknown")) : onlineText(d.online)),
      td("rejected", fmtNumber(d.rejected_frames)),
      td("last_reading", d.last_reading_at ? timeAgo(d.last_reading_at) : "—"),
      td("battery", battery(d)),
      td("detail", d.detail ? el("span", { lang: "en" }, d.detail) : "—"),
    ))))));
}

// --- health graph ---------------------------------------------------------------------------

const SERIES = [
  { key: "cpu_pct", title: "node.graph.cpu", value: (s) => s.cpu_pct, digits: 1 },
  { key: "outbox_depth", title: "node.graph.outbox", value: (s) => s.outbox_depth, digits: 0 },
  { key: "disk_free", title: "node.graph.disk",
    value: (s) => (s.disk_free_bytes == null ? null : s.disk_free_bytes / 1e9), digits: 1 },
];

/** A y-axis top that is a round number, so tick labels read well. */
function niceMax(max) {
  if (!(max > 0)) return 1;
  const step = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= max) return m * step;
  return 10 * step;
}

function lineChart(series, samples, from, to) {
  const W = 480, H = 190, L = 48, R = 12, T = 12, B = 26;
  const points = samples.map((s) => [Date.parse(s.ts), series.value(s)]).filter(([, v]) => v !== null && v !== undefined);
  const titleText = t(series.title);
  const values = points.map(([, v]) => v);
  const top = niceMax(Math.max(0, ...values));
  const x = (ts) => L + ((ts - from) / (to - from)) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  const id = `chart-${series.key}`;
  const summary = values.length
    ? t("node.graph.summary", { title: titleText, n: values.length,
      last: fmtNumber(values.at(-1), series.digits),
      min: fmtNumber(Math.min(...values), series.digits), max: fmtNumber(Math.max(...values), series.digits) })
    : t("node.graph.none", { n: hours });
  const grid = [0, 0.5, 1].map((f) => [
    svg("line", { x1: L, x2: W - R, y1: y(top * f), y2: y(top * f), class: "grid" }),
    svg("text", { x: L - 6, y: y(top * f) + 4, "text-anchor": "end", class: "tick" },
      document.createTextNode(fmtNumber(top * f, top < 10 ? 1 : 0))),
  ]).flat();
  const xTicks = [from, (from + to) / 2, to].map((ts, i) => svg("text", {
    x: x(ts), y: H - 6, "text-anchor": ["start", "middle", "end"][i], class: "tick" },
  document.createTextNode(fmtTime(new Date(ts).toISOString()))));
  const line = points.length > 1
    ? svg("polyline", { points: points.map(([ts, v]) => `${x(ts).toFixed(1)},${y(v).toFixed(1)}`).join(" "), class: "line" })
    : null;
  // Few samples: dots make each one visible (a single sample has no line at all).
  const dots = points.length <= 60
    ? points.map(([ts, v]) => svg("circle", { cx: x(ts).toFixed(1), cy: y(v).toFixed(1), r: 3, class: "dot" }))
    : [];
  const chart = svg("svg", {
    viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `${id}-title ${id}-desc`,
    class: "chart", "data-samples": String(points.length), "data-testid": `chart-${series.key}` },
  svg("title", { id: `${id}-title` }, document.createTextNode(titleText)),
  svg("desc", { id: `${id}-desc` }, document.createTextNode(summary)),
  ...grid, ...xTicks,
  svg("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }),
  line, ...dots);
  return el("figure", { class: "chart-card card" },
    el("figcaption", {}, titleText), chart,
    el("p", { class: "muted small", "aria-hidden": "true" }, summary));
}

function renderGraph(history) {
  const samples = history.samples;
  const to = Date.now(), from = to - hours * 3600_000;
  const cell = (v, digits) => el("td", {}, fmtNumber(v, digits));
  // replaceChildren would print a null as text: filter the optional parts out.
  graphBody.replaceChildren(...[
    el("div", { class: "charts" }, SERIES.map((s) => lineChart(s, samples, from, to))),
    samples.length ? null : el("p", { class: "muted", "data-testid": "no-samples" }, t("node.graph.none", { n: hours })),
    el("details", { class: "chart-table" },
      el("summary", {}, t("node.graph.table", { n: samples.length })),
      el("div", { class: "table-wrap" }, el("table", { "data-testid": "health-table" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("node.col.time")),
          SERIES.map((s) => el("th", { scope: "col" }, t(s.title))))),
        el("tbody", {}, [...samples].reverse().map((s) => el("tr", {},
          el("th", { scope: "row" }, new Date(s.ts).toLocaleString(locale, { dateStyle: "short", timeStyle: "medium" })),
          SERIES.map((series) => cell(series.value(s), series.digits))))))),
      el("p", { class: "muted small" }, t("node.graph.note"))),
  ].filter(Boolean));
}

function graphSection() {
  const switcher = el("div", { class: "segmented", role: "group", "aria-label": t("node.graph.window") },
    WINDOWS.map((n) => el("button", {
      type: "button", dataset: { hours: String(n) }, "aria-pressed": String(n === hours),
      onclick: async (event) => {
        hours = n;
        for (const b of switcher.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b === event.currentTarget));
        await loadGraph();
      },
    }, t("node.graph.hours", { n }))));
  sections.graph.replaceChildren(
    el("div", { class: "graph-head" }, el("h2", { id: "graph-title" }, t("node.graph.title")), switcher),
    graphBody);
}

async function loadGraph() {
  renderGraph(await api(`/api/v1/fleet/nodes/${encodeURIComponent(nodeId)}/health`, { query: { hours } }));
}

async function refresh() {
  try {
    const node = await api(`/api/v1/fleet/nodes/${encodeURIComponent(nodeId)}`);
    if (!loaded) {
      graphSection();
      // The graph before the device list: a node can have dozens of devices.
      root.replaceChildren(sections.summary, sections.health, sections.graph, sections.devices);
      loaded = true;
    }
    renderSummary(node);
    renderHealth(node);
    renderDevices(node);
    await loadGraph();
    errorLine.hidden = true;
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      root.replaceChildren(el("div", { class: "card not-found", role: "alert", "data-testid": "not-found" },
        el("p", {}, el("strong", {}, t("node.not_found", { node: nodeId }))),
        el("p", {}, t("node.not_found_hint")),
        el("p", {}, el("a", { href: "/fleet" }, t("node.back")))));
      return false;  // nothing to refresh
    }
    if (!loaded) root.replaceChildren();
    errorLine.textContent = t("fleet.refresh_failed", { detail: error.message });
    errorLine.hidden = false;
    return true;
  }
}

async function loop() {
  const again = document.hidden ? true : await refresh();
  if (again) setTimeout(loop, REFRESH_MS);
}
loop();
