// Transport analytics (/transport/analytics): ridership by route, stop and hour, load
// factor, on-time performance, reservation no-shows and pool-car utilisation over a
// date range.
//
// As on the desk analytics page, every figure is a value of the API as it came
// (docs/analytics.md, "Transport"): nothing is summed here, each number carries its
// raw value in `data-value`, and the CSV buttons download the API's own CSV. Bar
// charts are inline SVG with their colours inline, so the PNG export looks the same.
import {
  announce, api, downloadApiCsv, downloadSvgAsPng, el, fmtNumber, fmtPercent, lang,
  showError, svg, t,
} from "/static/js/common.js";

const locale = lang === "id" ? "id-ID" : "en-GB";
const TZ = "Asia/Makassar";  // the service's zone (WITA): GTFS times and the hour buckets
const OFFSET = "+08:00";
const DAY_MS = 86_400_000;
const MAX_DAYS = 366;
const DEFAULT_DAYS = 28;
const BASE = "/api/v1/analytics/transport";
const BAR = "#0072b2";

const form = document.getElementById("ta-filters");
const fromInput = document.getElementById("ta-from");
const toInput = document.getElementById("ta-to");
const rangeError = document.getElementById("ta-range-error");
const root = document.getElementById("ta-root");
let generation = 0;

const isoDay = (date) => new Intl.DateTimeFormat("en-CA", { timeZone: TZ }).format(date);
const addDays = (day, n) => new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);
const daysBetween = (a, b) => Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / DAY_MS);
const validDay = (s) => /^\d{4}-\d{2}-\d{2}$/.test(s || "") && !Number.isNaN(Date.parse(s));
const fmtDay = (day) => new Date(`${day}T00:00:00Z`).toLocaleDateString(locale,
  { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
const raw = (v) => (v === null || v === undefined ? "" : String(v));

function stateFromUrl() {
  const q = new URLSearchParams(location.search);
  const today = isoDay(new Date());
  return { from: q.get("from") ?? addDays(today, 1 - DEFAULT_DAYS), to: q.get("to") ?? today };
}

function validate({ from, to }) {
  if (!validDay(from) || !validDay(to)) return t("analytics.error.missing");
  if (daysBetween(from, to) < 0) return t("analytics.error.order");
  if (daysBetween(from, to) + 1 > MAX_DAYS) return t("analytics.error.too_long", { days: MAX_DAYS });
  return null;
}

/** The API's half-open range for the inclusive days on the form. */
const apiRange = (s) => ({ from: `${s.from}T00:00:00${OFFSET}`, to: `${addDays(s.to, 1)}T00:00:00${OFFSET}` });

function valueCell(field, value, label) {
  return el("td", { class: "num", dataset: { field, value: raw(value) } }, label);
}

async function exportWith(button, run) {
  button.disabled = true;
  try {
    await run();
  } catch (error) {
    announce(t("common.error", { detail: error.message }));
  } finally {
    button.disabled = false;
  }
}

/** A card with its heading and the CSV (API) and PNG (chart) buttons. */
function card(id, title, { csv, png }) {
  const body = el("div", { class: "chart-body" });
  const buttons = [];
  if (csv) {
    buttons.push(el("button", {
      type: "button", "data-testid": `csv-${id}`, "aria-label": t("analytics.csv_label", { chart: title }),
      onclick: (e) => exportWith(e.currentTarget, () => downloadApiCsv(csv.path, csv.query, csv.file)),
    }, t("common.export_csv")));
  }
  if (png) {
    buttons.push(el("button", {
      type: "button", "data-testid": `png-${id}`, "aria-label": t("analytics.png_label", { chart: title }),
      onclick: (e) => exportWith(e.currentTarget, () => {
        const chart = body.querySelector("svg.chart");
        return chart ? downloadSvgAsPng(chart, `${png}.png`) : undefined;
      }),
    }, t("common.export_png")));
  }
  const section = el("section", { class: "card chart-card", id: `ta-${id}`, "aria-labelledby": `ta-${id}-h`,
                                  dataset: { chart: id } },
    el("div", { class: "chart-head" }, el("h2", { id: `ta-${id}-h` }, title), el("div", { class: "toolbar" }, buttons)),
    body);
  return { section, body };
}

/** Horizontal bars (routes, stops) or columns (hours) with the numbers as text too. */
function barChart(title, rows, { columns = false } = {}) {
  const max = Math.max(1, ...rows.map((r) => r.boardings));
  const label = t("tanalytics.chart_label", { title, count: rows.length });
  if (columns) {
    const w = 28, h = 160, left = 36, top = 16, bottom = 30;
    const width = left + rows.length * w + 8, height = top + h + bottom;
    const chart = svg("svg", { class: "chart bars", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
    chart.append(svg("rect", { x: 0, y: 0, width, height, fill: "#fff" }));
    rows.forEach((r, i) => {
      const bh = (r.boardings / max) * h;
      const x = left + i * w;
      chart.append(
        svg("rect", { x: x + 3, y: top + h - bh, width: w - 6, height: bh, fill: BAR, "data-key": r.key, "data-value": r.boardings }),
        svg("text", { x: x + w / 2, y: top + h + 14, "text-anchor": "middle", "font-size": 10, fill: "#1b2430" }, document.createTextNode(r.key)));
      if (r.boardings) {
        chart.append(svg("text", { x: x + w / 2, y: top + h - bh - 3, "text-anchor": "middle", "font-size": 10, fill: "#1b2430" },
          document.createTextNode(fmtNumber(r.boardings))));
      }
    });
    return chart;
  }
  const rowH = 26, left = 230, right = 60, top = 6, width = 620;
  const height = top + rows.length * rowH + 6;
  const chart = svg("svg", { class: "chart hbars", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
  chart.append(svg("rect", { x: 0, y: 0, width, height, fill: "#fff" }));
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const bw = (r.boardings / max) * (width - left - right);
    chart.append(
      // Long stop names are shortened in the chart; the table under it has them whole.
      svg("text", { x: left - 8, y: y + 17, "text-anchor": "end", "font-size": 13, fill: "#1b2430" },
        document.createTextNode(r.name.length > 30 ? `${r.name.slice(0, 29)}…` : r.name)),
      svg("rect", { x: left, y: y + 4, width: Math.max(bw, 1), height: rowH - 8, fill: BAR, "data-key": r.key, "data-value": r.boardings }),
      svg("text", { x: left + bw + 6, y: y + 17, "font-size": 13, fill: "#1b2430" }, document.createTextNode(fmtNumber(r.boardings))));
  });
  return chart;
}

function ridershipTable(rows, by) {
  const head = by === "hour" ? "tanalytics.col.hour" : "tanalytics.col.name";
  return el("div", { class: "table-wrap" }, el("table", { class: "compact", dataset: { table: `ridership-${by}` } },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t(head)),
      el("th", { scope: "col", class: "num" }, t("tanalytics.col.boardings")))),
    el("tbody", {}, rows.map((r) => el("tr", { dataset: { key: r.key } },
      el("th", { scope: "row" }, r.name), valueCell("boardings", r.boardings, fmtNumber(r.boardings)))))));
}

const ROUTE_COLS = [
  ["trips", (v) => fmtNumber(v)], ["boardings", (v) => fmtNumber(v)], ["seats", (v) => fmtNumber(v)],
  ["load_factor", (v) => fmtPercent(v)], ["departures", (v) => fmtNumber(v)],
  ["on_time_rate", (v) => fmtPercent(v)], ["reservations", (v) => fmtNumber(v)],
  ["no_show_rate", (v) => fmtPercent(v)],
];
const CAR_COLS = [
  ["trips", (v) => fmtNumber(v)], ["hours_used", (v) => fmtNumber(v, 2)],
  ["hours_available", (v) => fmtNumber(v, 2)], ["utilisation", (v) => fmtPercent(v)],
  ["distance_km", (v) => fmtNumber(v, 2)],
];

function table(kind, rows, cols, first) {
  return el("div", { class: "table-wrap" }, el("table", { class: "compact", dataset: { table: kind } },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t(first.head)),
      cols.map(([f]) => el("th", { scope: "col", class: "num" }, t(`tanalytics.col.${f}`))))),
    el("tbody", {}, rows.map((r) => el("tr", { dataset: { key: first.key(r) } },
      el("th", { scope: "row" }, first.label(r)),
      cols.map(([f, fmt]) => valueCell(f, r[f], fmt(r[f]))))))));
}

function kpis(routes, ridership, cars) {
  const items = [
    ["boardings", ridership.total, fmtNumber(ridership.total)],
    ["load_factor", routes.totals.load_factor, fmtPercent(routes.totals.load_factor)],
    ["on_time_rate", routes.totals.on_time_rate, fmtPercent(routes.totals.on_time_rate)],
    ["no_show_rate", routes.totals.no_show_rate, fmtPercent(routes.totals.no_show_rate)],
    ["utilisation", cars.totals.utilisation, fmtPercent(cars.totals.utilisation)],
  ];
  const names = { boardings: "boardings", load_factor: "load_factor", on_time_rate: "on_time", no_show_rate: "no_show", utilisation: "car_use" };
  return el("dl", { class: "kpis", "data-testid": "ta-kpis" }, items.map(([field, value, label]) =>
    el("div", { class: "kpi" }, el("dt", {}, t(`tanalytics.kpi.${names[field]}`)),
      el("dd", { dataset: { field, value: raw(value) } }, label))));
}

async function load(state) {
  const mine = ++generation;
  root.dataset.state = "loading";
  root.setAttribute("aria-busy", "true");
  const range = apiRange(state);
  try {
    const [routes, byRoute, byStop, byHour, cars] = await Promise.all([
      api(`${BASE}/routes`, { query: range }),
      api(`${BASE}/ridership`, { query: { ...range, by: "route" } }),
      api(`${BASE}/ridership`, { query: { ...range, by: "stop" } }),
      api(`${BASE}/ridership`, { query: { ...range, by: "hour" } }),
      api(`${BASE}/pool-cars`, { query: range }),
    ]);
    if (mine !== generation) return;
    const summary = card("kpis", t("tanalytics.kpis"), {});
    summary.body.append(kpis(routes, byRoute, cars));
    const ridership = [["route", byRoute, false], ["stop", byStop, false], ["hour", byHour, true]].map(([by, report, columns]) => {
      const title = t(`tanalytics.by_${by}`);
      const c = card(`ridership-${by}`, title, {
        csv: { path: `${BASE}/ridership`, query: { ...range, by }, file: `transport-ridership-${by}.csv` },
        png: `transport-ridership-${by}`,
      });
      if (!report.rows.length || !report.total) c.body.append(el("p", { class: "muted" }, t("tanalytics.empty")));
      else c.body.append(el("div", { class: "svg-scroll" }, barChart(title, report.rows, { columns })), ridershipTable(report.rows, by));
      return c.section;
    });
    const perf = card("routes", t("tanalytics.routes"), {
      csv: { path: `${BASE}/routes`, query: range, file: "transport-routes.csv" },
    });
    perf.body.append(table("routes", [...routes.rows, routes.totals], ROUTE_COLS, {
      head: "tanalytics.col.route", key: (r) => r.route,
      label: (r) => (r.route === "all" ? t("tanalytics.all") : r.name),
    }));
    const carCard = card("cars", t("tanalytics.cars"), {
      csv: { path: `${BASE}/pool-cars`, query: range, file: "transport-pool-cars.csv" },
    });
    carCard.body.append(cars.rows.length ? table("cars", [...cars.rows, cars.totals], CAR_COLS, {
      head: "tanalytics.col.vehicle", key: (r) => r.vehicle,
      label: (r) => (r.vehicle === "all" ? t("tanalytics.all_cars") : `${r.vehicle}${r.plate ? ` (${r.plate})` : ""}`),
    }) : el("p", { class: "muted" }, t("tanalytics.empty")));
    root.replaceChildren(
      el("p", { class: "range-summary" }, t("tanalytics.range", { from: fmtDay(state.from), to: fmtDay(state.to) })),
      summary.section,
      el("div", { class: "chart-grid two" }, ridership.slice(0, 2)),
      ridership[2], perf.section, carCard.section);
    root.dataset.state = "ready";
  } catch (error) {
    if (mine !== generation) return;
    root.dataset.state = "error";
    showError(root, error, () => load(state));
  } finally {
    if (mine === generation) root.removeAttribute("aria-busy");
  }
}

function apply(state, push) {
  fromInput.value = state.from;
  toInput.value = state.to;
  const problem = validate(state);
  rangeError.hidden = !problem;
  rangeError.textContent = problem || "";
  for (const input of [fromInput, toInput]) {
    if (problem) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
  if (problem) return;
  const url = new URL(location.href);
  url.searchParams.set("from", state.from);
  url.searchParams.set("to", state.to);
  if (url.href !== location.href) history[push ? "pushState" : "replaceState"](null, "", url);
  load(state);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  apply({ from: fromInput.value, to: toInput.value }, true);
});
window.addEventListener("popstate", () => apply(stateFromUrl(), false));
apply(stateFromUrl(), false);
