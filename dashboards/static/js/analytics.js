// Facility manager's analytics: utilisation heatmap, occupancy, no-shows, releases,
// the booking × sensor matrix and the least-used zones of one building over a date range.
//
// Every figure shown is a value of the analytics API as it came (docs/analytics.md):
// nothing is summed or averaged here, so the page and the API's CSV never disagree.
// Each rendered number carries its raw value in `data-value`; the text is only its
// formatted label. Charts are inline SVG drawn by hand (no library, nothing fetched
// from elsewhere) so they can be exported to PNG as they are seen.
import {
  announce, api, downloadApiCsv, downloadSvgAsPng, el, fmtNumber, fmtPercent, lang,
  showError, svg, t,
} from "/static/js/common.js";

const locale = lang === "id" ? "id-ID" : "en-GB";
const DAY_MS = 86_400_000;
const MAX_DAYS = 366;  // the API's limit for day buckets (cloud.analytics.MAX_RANGE)
const DEFAULT_DAYS = 28;  // four whole weeks: every weekday of the heatmap counted 4 times
const UNDERUSED_LIMIT = 5;
const REASONS = ["no_show", "away", "released_at_desk", "displaced_by_offline_checkin", "other"];
// Okabe–Ito: categories stay apart with every common colour-vision deficiency.
const REASON_COLOURS = {
  no_show: "#d55e00", away: "#e69f00", released_at_desk: "#0072b2",
  displaced_by_offline_checkin: "#cc79a7", other: "#8a8f96",
};
const MATRIX_KINDS = ["used_as_booked", "used_without_booking", "booked_but_not_used", "unused"];
const MATRIX_COLOURS = {
  used_as_booked: "#0072b2", used_without_booking: "#56b4e9",
  booked_but_not_used: "#d55e00", unused: "#e8edf2",
};

const form = document.getElementById("analytics-filters");
const fromInput = document.getElementById("a-from");
const toInput = document.getElementById("a-to");
const buildingSelect = document.getElementById("a-building");
const rangeError = document.getElementById("a-range-error");
const root = document.getElementById("analytics-root");

let buildings = [];  // [{id, name, tz, zones: Map(id -> name)}] from the site tree
let generation = 0;  // a newer load wins; answers to an older one are dropped

// --- dates -------------------------------------------------------------------------------

/** "YYYY-MM-DD" of `date` (a Date) in the IANA zone `tz`. */
function isoDay(date, tz) {
  // en-CA formats as YYYY-MM-DD; the zone makes "today" the site's today, not the browser's.
  return new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit",
                                            day: "2-digit" }).format(date);
}

function addDays(day, n) {
  return new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);
}

function daysBetween(a, b) {
  return Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / DAY_MS);
}

/** The UTC offset ("+08:00") of `tz` at local midnight of `day`: the API wants offsets. */
function offsetOf(day, tz) {
  const probe = new Date(`${day}T12:00:00Z`);
  const name = new Intl.DateTimeFormat("en-US", { timeZone: tz, timeZoneName: "longOffset" })
    .formatToParts(probe).find((p) => p.type === "timeZoneName")?.value || "GMT";
  const m = /GMT([+-]\d{2}):?(\d{2})?/.exec(name);
  return m ? `${m[1]}:${m[2] || "00"}` : "+00:00";
}

const validDay = (s) => /^\d{4}-\d{2}-\d{2}$/.test(s || "") && !Number.isNaN(Date.parse(s));

function fmtDay(day, options = { day: "numeric", month: "short", year: "numeric" }) {
  return new Date(`${day}T00:00:00Z`).toLocaleDateString(locale, { ...options, timeZone: "UTC" });
}

function weekdayName(wd, style = "short") {
  // 2024-01-01 was a Monday, and the API counts Monday as 0.
  return new Date(Date.UTC(2024, 0, 1 + wd)).toLocaleDateString(locale,
    { weekday: style, timeZone: "UTC" });
}

// --- state in the URL -----------------------------------------------------------------------

/** The range the page shows: from the URL, else the last four weeks of the site. */
function stateFromUrl() {
  const q = new URLSearchParams(location.search);
  const building = buildings.find((b) => b.id === q.get("building")) || buildings[0];
  const today = isoDay(new Date(), building.tz);
  return {
    building: building.id,
    from: q.get("from") ?? addDays(today, 1 - DEFAULT_DAYS),
    to: q.get("to") ?? today,  // inclusive: the last day shown
  };
}

/** null when the range can be asked for, else the message to show. */
function validate({ from, to }) {
  if (!validDay(from) || !validDay(to)) return t("analytics.error.missing");
  if (daysBetween(from, to) < 0) return t("analytics.error.order");
  if (daysBetween(from, to) + 1 > MAX_DAYS) return t("analytics.error.too_long", { days: MAX_DAYS });
  return null;
}

function apiRange(state) {
  const tz = buildingOf(state).tz;
  const end = addDays(state.to, 1);  // the API's `to` is exclusive
  return {
    from: `${state.from}T00:00:00${offsetOf(state.from, tz)}`,
    to: `${end}T00:00:00${offsetOf(end, tz)}`,
    building: state.building,
  };
}

const buildingOf = (state) => buildings.find((b) => b.id === state.building) || buildings[0];

// --- small rendering helpers ----------------------------------------------------------------

const raw = (v) => (v === null || v === undefined ? "" : String(v));
const fmtPct = (v, digits = 2) => (v === null || v === undefined ? "—" : `${fmtNumber(v, digits)} %`);

/** A table cell showing `label` and carrying the API's own value. */
function valueCell(field, value, label) {
  return el("td", { class: "num", dataset: { field, value: raw(value) } }, label);
}

/** Single-hue blue ramp (ColorBrewer "Blues" ends): order is readable without hue. */
function blue(pct) {
  const lo = [239, 243, 255], hi = [8, 48, 107];
  const f = Math.max(0, Math.min(1, pct / 100)) ** 0.7;  // spread the common low values
  const c = lo.map((l, i) => Math.round(l + (hi[i] - l) * f));
  return `rgb(${c.join(",")})`;
}
const inkOn = (pct) => (pct >= 45 ? "#fff" : "#1b2430");

/** A chart card: heading, description, CSV/PNG buttons and a body filled later. */
function card(id, { csv, png }) {
  const title = t(`analytics.${id}.title`);
  const body = el("div", { class: "chart-body" }, el("p", { class: "muted" }, t("common.loading")));
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
      disabled: true,
      onclick: (e) => exportWith(e.currentTarget, () => {
        const chart = body.querySelector("svg.chart");
        return chart ? downloadSvgAsPng(chart, `${png}.png`) : undefined;
      }),
    }, t("common.export_png")));
  }
  const section = el("section", { class: "card chart-card", id: `a-${id}`, "aria-labelledby": `a-${id}-h`,
                                  dataset: { chart: id, state: "loading" } },
    el("div", { class: "chart-head" },
      el("h2", { id: `a-${id}-h` }, title),
      el("div", { class: "toolbar" }, buttons)),
    el("p", { class: "hint" }, t(`analytics.${id}.desc`)),
    body);
  return { section, body, buttons };
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

function empty(body) {
  body.replaceChildren(el("p", { class: "muted" }, t("analytics.empty")));
}

// --- charts ---------------------------------------------------------------------------------

function renderKpis(body, row) {
  if (!row) return empty(body);
  const items = [
    ["utilisation_pct", fmtPct(row.utilisation_pct)],
    ["peak_occupancy", fmtNumber(row.peak_occupancy)],
    ["avg_occupancy_when_occupied", fmtNumber(row.avg_occupancy_when_occupied, 2)],
    ["bookings", fmtNumber(row.bookings)],
    ["no_shows", fmtNumber(row.no_shows)],
    ["no_show_rate", fmtPercent(row.no_show_rate)],
    ["desks", fmtNumber(row.desks)],
  ];
  body.replaceChildren(el("dl", { class: "kpis" }, items.map(([field, label]) =>
    el("div", { class: "kpi" },
      el("dt", {}, t(`analytics.kpi.${field}`)),
      el("dd", { dataset: { field, value: raw(row[field]) } },
        label)))));
}

function renderHeatmap(body, heatmap) {
  const cellW = 34, cellH = 26, left = 48, top = 22, legendH = 44;
  const width = left + 24 * cellW + 2, height = top + 7 * cellH + legendH;
  const byKey = new Map(heatmap.cells.map((c) => [`${c.weekday}-${c.hour}`, c.utilisation_pct]));
  const chart = svg("svg", { class: "chart heatmap", viewBox: `0 0 ${width} ${height}`, role: "img",
                             "aria-labelledby": "a-heatmap-h", "font-family": "system-ui, sans-serif" },
    svg("defs", {}, svg("pattern", { id: "a-nodata", width: 6, height: 6, patternUnits: "userSpaceOnUse",
                                     patternTransform: "rotate(45)" },
      svg("rect", { width: 6, height: 6, fill: "#fff" }),
      svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#b5bec8", "stroke-width": 2 }))));
  for (let h = 0; h < 24; h++) {
    chart.append(svg("text", { x: left + h * cellW + cellW / 2, y: top - 7, "text-anchor": "middle",
                               "font-size": 10, fill: "#5b6775" }, document.createTextNode(String(h).padStart(2, "0"))));
  }
  for (let wd = 0; wd < 7; wd++) {
    chart.append(svg("text", { x: left - 6, y: top + wd * cellH + cellH / 2 + 4, "text-anchor": "end",
                               "font-size": 11, fill: "#1b2430" }, document.createTextNode(weekdayName(wd))));
    for (let h = 0; h < 24; h++) {
      const v = byKey.get(`${wd}-${h}`) ?? null;
      const x = left + h * cellW, y = top + wd * cellH;
      const label = v === null ? t("analytics.heatmap.no_data") : fmtPct(v);
      chart.append(svg("g", { class: "cell", "data-weekday": wd, "data-hour": h, "data-value": raw(v) },
        svg("title", {}, document.createTextNode(t("analytics.heatmap.cell",
          { day: weekdayName(wd, "long"), hour: String(h).padStart(2, "0"), value: label }))),
        svg("rect", { x: x + 1, y: y + 1, width: cellW - 2, height: cellH - 2, rx: 2,
                      fill: v === null ? "url(#a-nodata)" : blue(v) }),
        svg("text", { x: x + cellW / 2, y: y + cellH / 2 + 4, "text-anchor": "middle", "font-size": 10,
                      fill: v === null ? "#5b6775" : inkOn(v) },
          // One decimal below 10 % so a quiet hour is not printed as a flat 0.
          document.createTextNode(v === null ? "–" : fmtNumber(v, v > 0 && v < 10 ? 1 : 0)))));
    }
  }
  // Legend: the ramp with its ends named, so the scale reads without colour.
  const ly = top + 7 * cellH + 14;
  for (let i = 0; i <= 10; i++) {
    chart.append(svg("rect", { x: left + i * 24, y: ly, width: 24, height: 12, fill: blue(i * 10) }));
  }
  chart.append(
    svg("text", { x: left, y: ly + 26, "font-size": 10, fill: "#1b2430" }, document.createTextNode("0 %")),
    svg("text", { x: left + 11 * 24, y: ly + 26, "font-size": 10, fill: "#1b2430", "text-anchor": "end" },
      document.createTextNode("100 %")),
    svg("text", { x: left + 11 * 24 + 12, y: ly + 10, "font-size": 10, fill: "#5b6775" },
      document.createTextNode(t("analytics.heatmap.legend", { desks: fmtNumber(heatmap.desks) }))));

  // The same numbers as a table: screen readers get it (visually hidden), and anyone can show it.
  const table = el("table", { class: "heatmap-table" },
    el("caption", {}, t("analytics.heatmap.title")),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("analytics.heatmap.weekday")),
      Array.from({ length: 24 }, (_, h) => el("th", { scope: "col" }, `${String(h).padStart(2, "0")}:00`)))),
    el("tbody", {}, Array.from({ length: 7 }, (_, wd) => el("tr", {},
      el("th", { scope: "row" }, weekdayName(wd, "long")),
      Array.from({ length: 24 }, (_, h) => {
        const v = byKey.get(`${wd}-${h}`) ?? null;
        return el("td", { class: "num", dataset: { weekday: wd, hour: h, value: raw(v) } }, fmtPct(v));
      })))));
  const wrap = el("div", { class: "table-wrap visually-hidden", id: "a-heatmap-table" }, table);
  const toggle = el("button", { type: "button", "aria-expanded": "false", "aria-controls": "a-heatmap-table",
    onclick: () => {
      const shown = wrap.classList.toggle("visually-hidden") === false;
      toggle.setAttribute("aria-expanded", String(shown));
      toggle.textContent = t(shown ? "analytics.heatmap.hide_table" : "analytics.heatmap.show_table");
    } }, t("analytics.heatmap.show_table"));
  body.replaceChildren(el("div", { class: "svg-scroll" }, chart), toggle, wrap);
}

/** Vertical bars over days; `series` = [{key, colour}] stacked bottom-up. */
function dayBars({ days, series, max, yLabel, valueOf, titleOf, percent }) {
  const left = 46, right = 10, top = 14, plotH = 180, bottom = 46;
  const width = Math.max(480, left + right + days.length * 18);
  const plotW = width - left - right;
  const step = plotW / Math.max(1, days.length);
  const barW = Math.max(2, Math.min(28, step * 0.72));
  const yMax = max > 0 ? max : 1;
  const chart = svg("svg", { class: "chart bars", viewBox: `0 0 ${width} ${top + plotH + bottom}`, role: "img",
                             "font-family": "system-ui, sans-serif" });
  const ticks = percent ? [0, 25, 50, 75, 100] : niceTicks(yMax);
  const scaleMax = percent ? 100 : ticks[ticks.length - 1];
  const yOf = (v) => top + plotH - (v / scaleMax) * plotH;
  for (const tick of ticks) {
    chart.append(
      svg("line", { x1: left, x2: width - right, y1: yOf(tick), y2: yOf(tick), stroke: "#cfd6de" }),
      svg("text", { x: left - 6, y: yOf(tick) + 4, "text-anchor": "end", "font-size": 10, fill: "#5b6775" },
        document.createTextNode(percent ? `${fmtNumber(tick)} %` : fmtNumber(tick))));
  }
  chart.append(svg("text", { x: 12, y: top + plotH / 2, "font-size": 10, fill: "#5b6775",
                             transform: `rotate(-90 12 ${top + plotH / 2})`, "text-anchor": "middle" },
    document.createTextNode(yLabel)));
  const every = Math.ceil(days.length / 10);  // about ten date labels, whatever the range
  days.forEach((d, i) => {
    const x = left + i * step + (step - barW) / 2;
    const group = svg("g", { class: "bar", "data-day": d.day, "data-value": raw(valueOf(d)) },
      svg("title", {}, document.createTextNode(titleOf(d))));
    let base = 0;
    for (const s of series) {
      const v = s.value(d);
      if (v === null || v === undefined) continue;
      const h = (v / scaleMax) * plotH;
      group.append(svg("rect", { x, y: yOf(base) - h, width: barW, height: Math.max(0, h), fill: s.colour,
                                 "data-series": s.key, "data-value": raw(v) }));
      base += v;
    }
    if (valueOf(d) === null) {
      // No bookings that day: a rate of 0 would be a lie, so mark it apart.
      group.append(svg("text", { x: x + barW / 2, y: yOf(0) - 3, "text-anchor": "middle", "font-size": 10,
                                 fill: "#5b6775" }, document.createTextNode("–")));
    }
    chart.append(group);
    if (i % every === 0) {
      chart.append(svg("text", { x: x + barW / 2, y: top + plotH + 14, "text-anchor": "middle", "font-size": 10,
                                 fill: "#1b2430" }, document.createTextNode(fmtDay(d.day, { day: "numeric", month: "short" }))));
    }
  });
  chart.append(svg("line", { x1: left, x2: width - right, y1: yOf(0), y2: yOf(0), stroke: "#1b2430" }));
  return chart;
}

function niceTicks(max) {
  const step = Math.max(1, Math.ceil(max / 4));
  return [0, step, 2 * step, 3 * step, 4 * step];
}

const dayOf = (row) => row.bucket_start.slice(0, 10);  // the API gives site-local times

function renderNoShows(body, rows) {
  if (!rows.length) return empty(body);
  const days = rows.map((r) => ({ day: dayOf(r), row: r }));
  const chart = dayBars({
    days, percent: true, max: 100, yLabel: t("analytics.noshow.axis"),
    series: [{ key: "no_show_rate", colour: "#0072b2",
               value: (d) => (d.row.no_show_rate === null ? null : d.row.no_show_rate * 100) }],
    valueOf: (d) => d.row.no_show_rate,
    titleOf: (d) => t("analytics.noshow.bar", { day: fmtDay(d.day), rate: fmtPercent(d.row.no_show_rate),
                                                no_shows: fmtNumber(d.row.no_shows), bookings: fmtNumber(d.row.bookings) }),
  });
  chart.setAttribute("aria-labelledby", "a-noshow-h");
  body.replaceChildren(el("div", { class: "svg-scroll" }, chart));
}

function renderReleases(body, rows) {
  if (!rows.length) return empty(body);
  const days = rows.map((r) => ({ day: dayOf(r), row: r }));
  const chart = dayBars({
    days, percent: false, max: Math.max(0, ...rows.map((r) => r.released)),
    yLabel: t("analytics.releases.axis"),
    series: REASONS.map((key) => ({ key, colour: REASON_COLOURS[key], value: (d) => d.row[key] || null })),
    valueOf: (d) => d.row.released,
    titleOf: (d) => `${fmtDay(d.day)}: ${t("analytics.releases.total", { n: fmtNumber(d.row.released) })}; `
      + REASONS.filter((k) => d.row[k]).map((k) => `${t(`analytics.reason.${k}`)} ${fmtNumber(d.row[k])}`).join(", "),
  });
  chart.setAttribute("aria-labelledby", "a-releases-h");
  // Legend inside the SVG too, so a PNG on its own still explains the colours.
  const box = chart.viewBox.baseVal;
  const legendY = box.height - 16;
  let x = 46;
  for (const key of REASONS) {
    const label = t(`analytics.reason.${key}`);
    chart.append(svg("rect", { x, y: legendY - 9, width: 10, height: 10, fill: REASON_COLOURS[key], stroke: "#1b2430" }),
      svg("text", { x: x + 14, y: legendY, "font-size": 10, fill: "#1b2430" }, document.createTextNode(label)));
    x += 24 + label.length * 5.6;
  }
  if (x > box.width) chart.setAttribute("viewBox", `0 0 ${x} ${box.height}`);
  const totals = el("table", { class: "compact" },
    el("caption", { class: "visually-hidden" }, t("analytics.releases.title")),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("analytics.col.date")),
      el("th", { scope: "col", class: "num" }, t("analytics.releases.all")),
      REASONS.map((k) => el("th", { scope: "col", class: "num" }, t(`analytics.reason.${k}`))))),
    el("tbody", {}, rows.filter((r) => r.released > 0).map((r) => el("tr", { dataset: { day: dayOf(r) } },
      el("th", { scope: "row" }, fmtDay(dayOf(r))),
      valueCell("released", r.released, fmtNumber(r.released)),
      REASONS.map((k) => valueCell(k, r[k], fmtNumber(r[k])))))));
  const details = el("details", {}, el("summary", {}, t("analytics.releases.days_with")),
    rows.some((r) => r.released > 0) ? el("div", { class: "table-wrap" }, totals)
      : el("p", { class: "muted" }, t("common.none")));
  body.replaceChildren(el("div", { class: "svg-scroll" }, chart), details);
}

function renderDaily(body, rows) {
  if (!rows.length) return empty(body);
  const cols = [
    ["utilisation_pct", (v) => fmtPct(v)], ["peak_occupancy", (v) => fmtNumber(v)],
    ["avg_occupancy_when_occupied", (v) => fmtNumber(v, 2)], ["bookings", (v) => fmtNumber(v)],
    ["no_shows", (v) => fmtNumber(v)], ["no_show_rate", (v) => fmtPercent(v)],
  ];
  body.replaceChildren(el("div", { class: "table-wrap" }, el("table", { class: "compact" },
    el("caption", { class: "visually-hidden" }, t("analytics.daily.title")),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("analytics.col.date")),
      cols.map(([f]) => el("th", { scope: "col", class: "num" }, t(`analytics.kpi.${f}`))))),
    el("tbody", {}, rows.map((r) => el("tr", { dataset: { day: dayOf(r) } },
      el("th", { scope: "row" }, fmtDay(dayOf(r), { weekday: "short", day: "numeric", month: "short" })),
      cols.map(([f, fmt]) => valueCell(f, r[f], fmt(r[f])))))))));
}

/** Horizontal bars, one per row; `parts` = [{key, colour, value}] stacked left to right. */
function hBars({ rows, labelOf, parts, total, valueText }) {
  const left = 200, right = 70, rowH = 26, top = 6;
  const width = 640, plotW = width - left - right;
  const chart = svg("svg", { class: "chart hbars", viewBox: `0 0 ${width} ${top + rows.length * rowH + 6}`,
                             role: "img", "font-family": "system-ui, sans-serif" });
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const label = labelOf(r);
    const group = svg("g", { class: "hbar", "data-entity": r.entity },
      svg("title", {}, document.createTextNode(`${label}: ${valueText(r)}`)),
      svg("text", { x: left - 8, y: y + rowH / 2 + 4, "text-anchor": "end", "font-size": 11, fill: "#1b2430" },
        document.createTextNode(label.length > 28 ? `${label.slice(0, 27)}…` : label)),
      svg("rect", { x: left, y: y + 4, width: plotW, height: rowH - 8, fill: "#fff", stroke: "#cfd6de" }));
    let x = left;
    for (const p of parts) {
      const w = total(r) > 0 ? (p.value(r) / total(r)) * plotW : 0;
      if (w > 0) group.append(svg("rect", { x, y: y + 4, width: w, height: rowH - 8, fill: p.colour, "data-series": p.key }));
      x += w;
    }
    group.append(svg("text", { x: left + plotW + 6, y: y + rowH / 2 + 4, "font-size": 11, fill: "#1b2430" },
      document.createTextNode(valueText(r))));
    chart.append(group);
  });
  return chart;
}

function renderMatrix(body, rows, zoneName) {
  if (!rows.length) return empty(body);
  const chart = hBars({
    rows, labelOf: (r) => zoneName(r.entity), total: (r) => r.desk_days,
    parts: MATRIX_KINDS.map((key) => ({ key, colour: MATRIX_COLOURS[key], value: (r) => r[key] })),
    // Counts as the API gives them: a share computed here would be a number it never said.
    valueText: (r) => `${fmtNumber(r.used_as_booked)} / ${fmtNumber(r.desk_days)}`,
  });
  chart.setAttribute("aria-labelledby", "a-matrix-h");
  const legend = el("ul", { class: "legend" }, MATRIX_KINDS.map((k) => el("li", {},
    el("span", { class: "swatch", style: `background:${MATRIX_COLOURS[k]}` }), t(`analytics.matrix.${k}`))));
  body.replaceChildren(el("div", { class: "svg-scroll" }, chart), legend,
    el("div", { class: "table-wrap" }, el("table", { class: "compact" },
      el("caption", { class: "visually-hidden" }, t("analytics.matrix.title")),
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("analytics.col.zone")),
        el("th", { scope: "col", class: "num" }, t("analytics.matrix.desk_days")),
        MATRIX_KINDS.map((k) => el("th", { scope: "col", class: "num" }, t(`analytics.matrix.${k}`))))),
      el("tbody", {}, rows.map((r) => el("tr", { dataset: { entity: r.entity } },
        el("th", { scope: "row" }, zoneName(r.entity)),
        valueCell("desk_days", r.desk_days, fmtNumber(r.desk_days)),
        MATRIX_KINDS.map((k) => valueCell(k, r[k], fmtNumber(r[k])))))))));
}

/** Meeting rooms: booked vs sensed hours, in use without a booking, no-shows, right-sizing. */
function renderRooms(body, report) {
  if (!report.rooms.length) { empty(body); return; }
  const cols = ["booked_hours", "sensed_hours", "sensed_unbooked_hours", "no_shows"];
  body.replaceChildren(el("div", { class: "table-wrap" }, el("table", { class: "compact", "data-testid": "rooms-table" },
    el("thead", {}, el("tr", {},
      el("th", { scope: "col" }, t("analytics.rooms.room")),
      cols.map((c) => el("th", { scope: "col", class: "num" }, t(`analytics.rooms.${c}`))),
      el("th", { scope: "col" }, t("analytics.rooms.size")))),
    el("tbody", {}, report.rooms.map((r) => el("tr", { dataset: { room: r.room_id } },
      el("th", { scope: "row" }, `${r.name} (${fmtNumber(r.capacity)})`),
      cols.map((c) => valueCell(c, r[c], fmtNumber(r[c], c === "no_shows" ? 0 : 1))),
      el("td", { dataset: { field: "right_size", value: r.right_size } },
        t(`analytics.rooms.size.${r.right_size}`, {
          mean: r.mean_attendees === null ? "—" : fmtNumber(r.mean_attendees, 1) }))))))));
}

function renderUnderused(body, rows, zoneName) {
  if (!rows.length) return empty(body);
  const chart = hBars({
    rows, labelOf: (r) => zoneName(r.entity), total: () => 100,
    parts: [{ key: "utilisation_pct", colour: "#0072b2", value: (r) => r.utilisation_pct }],
    valueText: (r) => fmtPct(r.utilisation_pct, 1),
  });
  chart.setAttribute("aria-labelledby", "a-underused-h");
  const cols = [["utilisation_pct", (v) => fmtPct(v)], ["occupied_hours", (v) => fmtNumber(v, 1)],
                ["desks", (v) => fmtNumber(v)], ["peak_occupancy", (v) => fmtNumber(v)],
                ["avg_occupancy_when_occupied", (v) => fmtNumber(v, 2)]];
  body.replaceChildren(el("div", { class: "svg-scroll" }, chart),
    el("div", { class: "table-wrap" }, el("table", { class: "compact" },
      el("caption", { class: "visually-hidden" }, t("analytics.underused.title")),
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "#"), el("th", { scope: "col" }, t("analytics.col.zone")),
        cols.map(([f]) => el("th", { scope: "col", class: "num" }, t(`analytics.kpi.${f}`))))),
      el("tbody", {}, rows.map((r, i) => el("tr", { dataset: { entity: r.entity } },
        el("td", {}, String(i + 1)), el("th", { scope: "row" }, zoneName(r.entity)),
        cols.map(([f, fmt]) => valueCell(f, r[f], fmt(r[f])))))))));
}

// --- loading ----------------------------------------------------------------------------------

async function load(state) {
  const mine = ++generation;
  const range = apiRange(state);
  const building = buildingOf(state);
  const zoneName = (id) => building.zones.get(id) || id;
  const stamp = `${state.building}_${state.from}_${state.to}`;
  const util = "/api/v1/analytics/utilisation";
  const q = {
    kpi: { ...range, level: "building", bucket: "range" },
    daily: { ...range, level: "building", bucket: "day" },
    releases: { ...range, level: "building", bucket: "day" },
    matrix: { ...range, level: "zone" },
    underused: { ...range, level: "zone", bucket: "range", order: "utilisation", limit: UNDERUSED_LIMIT },
    heatmap: range,
  };
  const cards = {
    kpis: card("kpis", { csv: { path: util, query: q.kpi, file: `utilisation-total_${stamp}.csv` } }),
    heatmap: card("heatmap", { csv: { path: "/api/v1/analytics/heatmap", query: q.heatmap, file: `heatmap_${stamp}.csv` },
                               png: `heatmap_${stamp}` }),
    noshow: card("noshow", { csv: { path: util, query: q.daily, file: `utilisation-daily_${stamp}.csv` },
                             png: `no-show-rate_${stamp}` }),
    releases: card("releases", { csv: { path: "/api/v1/analytics/releases", query: q.releases, file: `releases_${stamp}.csv` },
                                 png: `releases_${stamp}` }),
    daily: card("daily", { csv: { path: util, query: q.daily, file: `utilisation-daily_${stamp}.csv` } }),
    matrix: card("matrix", { csv: { path: "/api/v1/analytics/booking-sensor-matrix", query: q.matrix, file: `booking-sensor-matrix_${stamp}.csv` },
                             png: `booking-sensor-matrix_${stamp}` }),
    rooms: card("rooms", { csv: { path: "/api/v1/analytics/rooms", query: { from: range.from, to: range.to },
                                  file: `rooms_${stamp}.csv` } }),
    underused: card("underused", { csv: { path: util, query: q.underused, file: `underused-zones_${stamp}.csv` },
                                   png: `underused-zones_${stamp}` }),
  };
  root.dataset.state = "loading";
  root.setAttribute("aria-busy", "true");
  root.replaceChildren(
    el("p", { class: "range-summary", id: "a-status" }, t("analytics.range_summary", {
      from: fmtDay(state.from), to: fmtDay(state.to), building: building.name })),
    cards.kpis.section,
    el("div", { class: "chart-grid" }, cards.heatmap.section),
    el("div", { class: "chart-grid two" }, cards.noshow.section, cards.releases.section),
    cards.daily.section,
    // Full width: their tables have many columns and long zone names.
    cards.matrix.section, cards.underused.section, cards.rooms.section);

  // One request per report; each card fills (or fails) on its own.
  const requests = {
    kpi: api(util, { query: q.kpi }),
    daily: api(util, { query: q.daily }),
    heatmap: api("/api/v1/analytics/heatmap", { query: q.heatmap }),
    releases: api("/api/v1/analytics/releases", { query: q.releases }),
    matrix: api("/api/v1/analytics/booking-sensor-matrix", { query: q.matrix }),
    underused: api(util, { query: q.underused }),
    rooms: api("/api/v1/analytics/rooms", { query: { from: range.from, to: range.to } }),
  };
  const fill = async (key, promise, draw) => {
    const { section, body, buttons } = cards[key];
    try {
      const data = await promise;
      if (mine !== generation) return;
      draw(body, data);
      section.dataset.state = "ready";
      for (const b of buttons) b.disabled = false;
    } catch (error) {
      if (mine !== generation) return;
      section.dataset.state = "error";
      showError(body, error, () => load(state));
    }
  };
  await Promise.all([
    fill("kpis", requests.kpi, (b, d) => renderKpis(b, d.rows[0])),
    fill("heatmap", requests.heatmap, renderHeatmap),
    fill("noshow", requests.daily, (b, d) => renderNoShows(b, d.rows)),
    fill("releases", requests.releases, (b, d) => renderReleases(b, d.rows)),
    fill("daily", requests.daily, (b, d) => renderDaily(b, d.rows)),
    fill("matrix", requests.matrix, (b, d) => renderMatrix(b, d.rows, zoneName)),
    fill("underused", requests.underused, (b, d) => renderUnderused(b, d.rows, zoneName)),
    fill("rooms", requests.rooms, renderRooms),
  ]);
  if (mine !== generation) return;
  root.dataset.state = "ready";
  root.removeAttribute("aria-busy");
  announce(t("analytics.loaded", { from: fmtDay(state.from), to: fmtDay(state.to), building: building.name }));
}

function showState(state) {
  fromInput.value = state.from;
  toInput.value = state.to;
  buildingSelect.value = state.building;
}

/** Checks the inputs; on success the URL takes the new range (a link shows the same). */
function submit(event) {
  event.preventDefault();
  const state = { from: fromInput.value, to: toInput.value, building: buildingSelect.value };
  const problem = validate(state);
  for (const input of [fromInput, toInput]) input.toggleAttribute("aria-invalid", Boolean(problem));
  rangeError.hidden = !problem;
  rangeError.textContent = problem || "";
  if (problem) {
    fromInput.focus();
    return;
  }
  const url = new URL(location.href);
  for (const [k, v] of Object.entries(state)) url.searchParams.set(k, v);
  if (url.href !== location.href) history.pushState(null, "", url);
  load(state);
}

async function start() {
  try {
    const tree = await api("/api/v1/sites/tree");
    buildings = tree.sites.flatMap((site) => site.buildings.map((b) => ({
      id: b.id, name: b.name, tz: site.timezone,
      zones: new Map(b.floors.flatMap((f) => f.zones.map((z) => [z.id, `${z.name} (${f.name})`]))),
    })));
  } catch (error) {
    root.dataset.state = "error";
    root.removeAttribute("aria-busy");
    showError(root, error, start);
    return;
  }
  if (!buildings.length) {
    root.dataset.state = "empty";
    root.removeAttribute("aria-busy");
    root.replaceChildren(el("p", { class: "muted" }, t("analytics.no_buildings")));
    form.hidden = true;
    return;
  }
  buildingSelect.replaceChildren(...buildings.map((b) => el("option", { value: b.id }, b.name)));
  fromInput.max = toInput.max = isoDay(new Date(Date.now() + 366 * DAY_MS), buildings[0].tz);
  const state = stateFromUrl();
  showState(state);
  const problem = validate(state);
  if (problem) {
    // A hand-edited link: say what is wrong instead of asking the API for nonsense.
    rangeError.hidden = false;
    rangeError.textContent = problem;
    root.dataset.state = "invalid";
    root.removeAttribute("aria-busy");
    root.replaceChildren();
    return;
  }
  load(state);
}

form.addEventListener("submit", submit);
window.addEventListener("popstate", () => {
  if (!buildings.length) return;
  const state = stateFromUrl();
  showState(state);
  rangeError.hidden = true;
  if (!validate(state)) load(state);
});
start();
