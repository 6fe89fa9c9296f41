// Lobby kiosk (/kiosk): free desks per floor, the next shuttle departures and a clock, read from 3 m.
// No login and no personal data: it only calls the public availability API (counts, and
// departures from the stops near the building with live ETAs, full/delayed/cancelled).
// It must never go blank on a lobby wall: on an API error it keeps the last data and
// says how old it is. Without ?lang= it alternates Bahasa Indonesia and English.
import { api, el, page } from "./common.js";

const params = new URLSearchParams(location.search);
// ?refresh= (seconds, at least 2) lets a site tune the display; 15 s by default.
const REFRESH_MS = Math.max(2, Number(params.get("refresh")) || 15) * 1000;
const ROTATE_MS = 20_000;
const LOCALES = { id: "id-ID", en: "en-GB" };

const tables = { [page.lang]: JSON.parse(document.getElementById("ruang-strings").textContent) };
let current = page.lang;
let data = null;          // the last availability that arrived
let lastOkAt = null;      // when it arrived (browser clock), for the stale notice
let failing = false;

const root = document.getElementById("kiosk-root");
const stale = document.getElementById("kiosk-stale");
const updated = document.getElementById("kiosk-updated");
const shuttleList = document.getElementById("kiosk-shuttle-list");
const clock = document.getElementById("kiosk-clock");
const dateLine = document.getElementById("kiosk-date");

/** Translation in the language currently on screen (which may not be the page's). */
function tr(key, values = {}) {
  const text = (tables[current] || tables[page.lang])[key] ?? tables[page.lang][key];
  if (text === undefined) return `[${key}]`;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in values ? String(values[name]) : m));
}
const num = (n) => Number(n).toLocaleString(LOCALES[current]);
// The building's time zone (from the API), so a screen set to another zone shows local time.
let timeZone;
const hhmm = (date) => date.toLocaleTimeString(LOCALES[current],
  { hour: "2-digit", minute: "2-digit", timeZone });

function renderClock() {
  const now = new Date();
  clock.dateTime = now.toISOString();
  clock.textContent = hhmm(now);
  dateLine.textContent = now.toLocaleDateString(LOCALES[current],
    { weekday: "long", day: "numeric", month: "long", timeZone });
}

function floorRow(floor) {
  const share = floor.total ? floor.free / floor.total : 0;
  const label = tr("kiosk.floor_label", { floor: floor.name, free: floor.free, total: floor.total });
  return el("li", { class: floor.free ? "floor" : "floor full", dataset: { floor: floor.id } },
    el("span", { class: "floor-name" }, floor.name),
    el("span", { class: "floor-count" },
      el("span", { class: "visually-hidden" }, label),
      el("span", { class: "free-number", "data-testid": `kiosk-free-${floor.id}`, "aria-hidden": "true" }, num(floor.free)),
      el("span", { class: "free-of", "aria-hidden": "true" },
        floor.free ? `${tr("kiosk.free")} ${tr("kiosk.of_total", { total: num(floor.total) })}` : tr("kiosk.full"))),
    // The bar repeats the number for a glance from afar; the text above carries the meaning.
    el("span", { class: "bar", "aria-hidden": "true" },
      el("span", { class: "bar-fill", style: `width: ${(share * 100).toFixed(1)}%` })));
}

function renderData() {
  if (!data) {
    root.replaceChildren(el("p", { class: "kiosk-waiting" }, tr("kiosk.waiting")));
  } else if (!data.buildings.some((b) => b.floors.length)) {
    root.replaceChildren(el("p", { class: "kiosk-waiting" }, tr("kiosk.no_floors")));
  } else {
    root.replaceChildren(...data.buildings.filter((b) => b.floors.length).map((b) =>
      el("section", { class: "building", dataset: { building: b.id } },
        el("h2", {}, b.name),
        el("ul", { class: "floors" }, b.floors.map(floorRow)))));
  }
  renderShuttles();
  if (lastOkAt) updated.textContent = tr("kiosk.updated", { time: hhmm(lastOkAt) });
  // The notice only while refreshes fail, with the age of what is on screen.
  stale.hidden = !(failing && data);
  if (failing && data) stale.textContent = tr("kiosk.stale", { time: hhmm(lastOkAt) });
}

function departs(value) {
  const at = Date.parse(value);
  return Number.isNaN(at) ? value : hhmm(new Date(at));
}

/** What the rider needs at a glance: cancelled, late (by how much), full, or on time. */
function statusCells(s) {
  const out = [];
  if (s.status === "cancelled") {
    out.push(el("span", { class: "pill alarm", dataset: { flag: "cancelled" } }, tr("kiosk.shuttles.cancelled")));
  } else if (s.status === "delayed") {
    out.push(el("span", { class: "pill warning", dataset: { flag: "delayed" } },
      tr("kiosk.shuttles.delayed", { min: Math.round((s.delay_s || 0) / 60) })));
  } else {
    out.push(el("span", { class: "pill ok", dataset: { flag: s.live ? "on_time" : "scheduled" } },
      tr(s.live ? "kiosk.shuttles.on_time" : "kiosk.shuttles.scheduled")));
  }
  if (s.full && s.status !== "cancelled") {
    out.push(" ", el("span", { class: "pill alarm", dataset: { flag: "full" } }, tr("kiosk.shuttles.full")));
  }
  return out;
}

/** Minutes until the expected departure, counted against the time of the data. */
function minutesAway(s) {
  const at = Date.parse(s.expected_at || s.scheduled_at);
  const ref = Date.parse(data.generated_at);
  if (Number.isNaN(at) || Number.isNaN(ref)) return null;
  return Math.max(0, Math.round((at - ref) / 60000));
}

function renderShuttles() {
  const shuttles = data?.shuttles || [];
  const alerts = document.getElementById("kiosk-shuttle-alerts");
  alerts.replaceChildren(...(data?.shuttle_alerts || []).map((text) =>
    el("li", { class: "kiosk-alert" }, tr("kiosk.shuttles.alert", { text }))));
  if (!data) return;
  if (!shuttles.length) {
    shuttleList.replaceChildren(el("p", { class: "kiosk-placeholder", "data-testid": "shuttle-none" },
      tr("kiosk.shuttles.none")));
    return;
  }
  shuttleList.replaceChildren(el("table", { class: "shuttle-table", "data-testid": "shuttle-table" },
    el("thead", {}, el("tr", {}, ["route", "stop", "departs", "status"].map((k) =>
      el("th", { scope: "col" }, tr(`kiosk.shuttles.${k}`))))),
    el("tbody", {}, shuttles.slice(0, 8).map((s) => {
      const cancelled = s.status === "cancelled";
      const minutes = cancelled ? null : minutesAway(s);
      const moved = !cancelled && s.expected_at && departs(s.expected_at) !== departs(s.scheduled_at);
      return el("tr", { dataset: { trip: s.trip, stop: s.stop_id, status: s.status, full: String(Boolean(s.full)) } },
        el("td", {}, el("span", { class: "route-badge", style: s.route_color ? `border-color: #${s.route_color}` : undefined }, s.route ?? "—"),
          s.headsign ? el("span", { class: "headsign" }, `→ ${s.headsign}`) : null),
        el("td", {}, s.stop ?? "—"),
        // The expected time is the big one; the timetable's shows struck through when it moved.
        el("td", { class: "departs", "data-testid": "shuttle-expected" },
          cancelled ? departs(s.scheduled_at) : departs(s.expected_at || s.scheduled_at),
          moved ? el("span", { class: "was" }, departs(s.scheduled_at)) : null,
          minutes === null ? null : el("span", { class: "in-min" },
            minutes ? tr("kiosk.shuttles.in_min", { min: minutes }) : tr("kiosk.shuttles.now"))),
        el("td", { class: "status" }, statusCells(s)));
    }))));
}

function applyLanguage() {
  document.documentElement.lang = current;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = tr(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-label]")) node.setAttribute("aria-label", tr(node.dataset.i18nLabel));
  document.title = `${tr("kiosk.title")} — Ruang`;
  renderClock();
  renderData();
}

async function refresh() {
  try {
    data = await api("/api/v1/public/availability", { query: { site: page.site } });
    timeZone = data.timezone || undefined;
    lastOkAt = new Date();
    failing = false;
  } catch {
    failing = true;  // keep `data`: the last counts stay on screen, marked stale
  }
  renderData();
  setTimeout(refresh, REFRESH_MS);
}

/** The other language's strings, read from this page rendered in that language.
 *  credentials "omit": no cookie is sent or stored, so the kiosk's own language
 *  choice (cookie) is not changed by this fetch. */
async function loadOtherLanguage(code) {
  const response = await fetch(`/kiosk?lang=${code}`, { credentials: "omit" });
  const html = new DOMParser().parseFromString(await response.text(), "text/html");
  tables[code] = JSON.parse(html.getElementById("ruang-strings").textContent);
}

async function rotateLanguages() {
  const other = page.lang === "id" ? "en" : "id";
  try {
    await loadOtherLanguage(other);
  } catch {
    return;  // one language is still fine
  }
  setInterval(() => {
    current = current === page.lang ? other : page.lang;
    applyLanguage();
  }, ROTATE_MS);
}

renderClock();
// A one-second tick: the minute flips on time without aligning timers to the wall clock.
setInterval(renderClock, 1000);
refresh();
// ?lang= pins one language (a screen per audience); otherwise alternate for everyone.
if (!params.has("lang")) rotateLanguages();
