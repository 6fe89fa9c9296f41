// Dispatcher (/transport/dispatch): the live transport network, every vehicle with its
// trip, delay and load, trip assignment and service alerts.
//
// The network is drawn once from the GTFS shapes and stops (transit-map.js, no map
// tiles). Vehicles come from /api/v1/transport/live and then move by the live SSE
// stream, like the floor map: each update touches only the markers and table rows
// of the vehicles it names. Stale, off-route and offline vehicles are highlighted
// on the map (ring pattern) and in the table (flag words), never by colour alone.

import { announce, api, el, lang, liveStream, showError, t } from "./common.js";
import { drawNetwork, placeVehicles, routeColour, vehicleAlert } from "./transit-map.js";

const LOCALE = lang === "id" ? "id-ID" : "en-GB";

const $ = (id) => document.getElementById(id);
const ui = {
  live: document.querySelector("[data-testid=dispatch-live]"),
  canvas: $("dispatch-canvas"),
  legend: $("dispatch-legend"),
  table: $("dispatch-vehicles"),
  assignForm: $("assign-form"),
  assignVehicle: $("assign-vehicle"),
  assignTrip: $("assign-trip"),
  assignStatus: $("assign-status"),
  alertForm: $("alert-form"),
  alertStatus: $("alert-status"),
  alertList: $("alert-list"),
};
const EFFECTS = ["SIGNIFICANT_DELAYS", "REDUCED_SERVICE", "NO_SERVICE", "DETOUR", "STOP_MOVED", "OTHER_EFFECT"];

const view = {
  map: null,
  routes: new Map(),    // route id -> route
  stops: new Map(),     // stop id -> stop
  trips: [],            // today's trips, for assignment
  vehicles: new Map(),  // vehicle id -> live row
  selected: null,
  source: null,
};

/** A list out of a response that is either the list or an object holding it. */
export function listOf(body, key) {
  if (Array.isArray(body)) return body;
  if (body && Array.isArray(body[key])) return body[key];
  if (body && Array.isArray(body.items)) return body.items;
  return [];
}

function today(offsetDays = 0) {
  // The service day in the building's zone (WITA), whatever zone this screen uses.
  const when = new Date(Date.now() + offsetDays * 86400000);
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Makassar" }).format(when);
}

function delayText(v) {
  if (v.delay_s === null || v.delay_s === undefined) return t("dispatch.delay.unknown");
  const min = Math.round(Math.abs(v.delay_s) / 60);
  if (min === 0) return t("dispatch.delay.on_time");
  return t(v.delay_s > 0 ? "dispatch.delay.late" : "dispatch.delay.early", { min });
}

// `load`: riders who boarded the running trip (door taps; nobody taps out), of `capacity`.
function loadText(v) {
  if (v.load === null || v.load === undefined) return "—";
  return v.capacity ? `${v.load}/${v.capacity}` : String(v.load);
}

const stateText = (v) => t(`dispatch.state.${v.state || "unknown"}`);
const routeName = (id) => (id && view.routes.get(id)?.short_name) || id || "—";
const stopName = (id) => (id && view.stops.get(id)?.name) || id || "—";

function vehicleLabel(v) {
  return t("dispatch.vehicle_label", {
    vehicle: v.vehicle, state: stateText(v), route: routeName(v.route), delay: delayText(v), load: loadText(v),
  }) + (vehicleAlert(v) ? `, ${t(`dispatch.flag.${vehicleAlert(v)}`)}` : "");
}

function flags(v) {
  const out = [];
  if (v.state === "offline") out.push("offline");
  if (v.stale) out.push("stale");
  if (v.off_route) out.push("off_route");
  return out.map((f) => el("span", { class: "pill alarm", dataset: { flag: f } }, t(`dispatch.flag.${f}`)));
}

function renderTable() {
  const rows = [...view.vehicles.values()].sort((a, b) => a.vehicle.localeCompare(b.vehicle));
  if (!rows.length) {
    ui.table.replaceChildren(el("caption", {}, t("dispatch.no_vehicles")));
    return;
  }
  ui.table.replaceChildren(
    el("thead", {}, el("tr", {}, ["vehicle", "trip", "next", "delay", "load", "state"].map((k) =>
      el("th", { scope: "col" }, t(`dispatch.col.${k}`))))),
    el("tbody", {}, rows.map((v) => el("tr", {
      class: v.vehicle === view.selected ? "selected" : undefined,
      dataset: { vehicle: v.vehicle, alert: vehicleAlert(v), state: v.state || "unknown" },
    },
    el("th", { scope: "row" }, el("button", { type: "button", class: "linklike", onclick: () => select(v.vehicle) }, v.vehicle)),
    el("td", { dataset: { col: "trip" } }, v.trip ? `${routeName(v.route)} · ${v.trip}` : t("dispatch.no_trip")),
    el("td", { dataset: { col: "next" } }, stopName(v.next_stop)),
    el("td", { dataset: { col: "delay" } }, delayText(v)),
    el("td", { dataset: { col: "load" } }, loadText(v)),
    el("td", { class: "flags", dataset: { col: "state" } }, stateText(v), " ", flags(v))))));
}

function renderVehicles() {
  if (view.map) {
    placeVehicles(view.map, [...view.vehicles.values()], {
      label: vehicleLabel, onSelect: select, selected: view.selected,
    });
    view.map.root.setAttribute("aria-label", t("dispatch.map_label", { count: view.vehicles.size }));
  }
  renderTable();
  const current = ui.assignVehicle.value;
  ui.assignVehicle.replaceChildren(...[...view.vehicles.keys()].sort().map((id) =>
    el("option", { value: id, selected: id === (current || view.selected) }, id)));
}

function select(id) {
  view.selected = id;
  ui.assignVehicle.value = id;
  renderVehicles();
}

/** Applies live rows (a full list or a few changed vehicles). */
function applyVehicles(rows, { full = false } = {}) {
  if (full) view.vehicles.clear();
  for (const row of rows) {
    if (row && row.vehicle) view.vehicles.set(row.vehicle, row);
  }
  renderVehicles();
}

async function loadLive() {
  applyVehicles(listOf(await api("/api/v1/transport/live"), "vehicles"), { full: true });
}

function renderLegend() {
  const item = (cls, key) => el("li", {}, el("span", { class: `swatch ${cls}`, "aria-hidden": "true" }), t(key));
  ui.legend.replaceChildren(
    ...[...view.routes.values()].map((r, i) => el("li", { dataset: { route: r.id } },
      el("span", { class: "swatch", style: `background: ${routeColour(r, i)}`, "aria-hidden": "true" }),
      `${r.short_name || r.id}${r.long_name ? ` — ${r.long_name}` : ""}`)),
    item("stop", "dispatch.legend.stop"),
    item("shuttle", "dispatch.legend.shuttle"),
    item("poolcar", "dispatch.legend.pool_car"),
    item("stale", "dispatch.flag.stale"),
    item("off_route", "dispatch.flag.off_route"),
    item("offline", "dispatch.flag.offline"));
}

async function loadNetwork() {
  // Yesterday's service day too: after midnight its late trips (GTFS 24:xx) still run.
  const [net, trips, yesterday] = await Promise.all([
    api("/api/v1/transport/network"),
    api("/api/v1/transport/trips", { query: { date: today() } }),
    api("/api/v1/transport/trips", { query: { date: today(-1) } }),
  ]);
  view.routes = new Map(net.routes.map((r) => [r.id, r]));
  view.stops = new Map(net.stops.map((s) => [s.id, s]));
  const stillRunning = listOf(yesterday, "trips").filter((tr) => Date.parse(tr.end) > Date.now());
  view.trips = [...stillRunning, ...listOf(trips, "trips")];
  view.map = drawNetwork({
    shapes: net.shapes,
    stops: net.stops,
    routes: net.routes,
    title: t("dispatch.map_label", { count: 0 }),
  });
  ui.canvas.replaceChildren(view.map.root);
  renderLegend();
  fillTripChoices();
  fillAlertChoices();
}

const hhmm = (iso) => new Date(iso).toLocaleTimeString(LOCALE, { hour: "2-digit", minute: "2-digit", timeZone: "Asia/Makassar" });

function fillTripChoices() {
  ui.assignTrip.replaceChildren(...view.trips
    .slice().sort((a, b) => String(a.start).localeCompare(String(b.start)))
    .map((trip) => el("option", { value: `${trip.trip_id}|${trip.service_date}` },
      `${hhmm(trip.start)} · ${routeName(trip.route_id)} · ${trip.trip_id}${trip.headsign ? ` → ${trip.headsign}` : ""}`)));
}

function fillAlertChoices() {
  const any = () => el("option", { value: "" }, t("dispatch.alert.any"));
  $("alert-effect").replaceChildren(...EFFECTS.map((e) => el("option", { value: e }, t(`dispatch.effect.${e}`))));
  $("alert-route").replaceChildren(any(), ...[...view.routes.values()].map((r) =>
    el("option", { value: r.id }, r.short_name || r.id)));
  $("alert-stop").replaceChildren(any(), ...[...view.stops.values()].map((s) =>
    el("option", { value: s.id }, s.name)));
}

async function loadAlerts() {
  const alerts = listOf(await api("/api/v1/transport/alerts"), "alerts").filter((a) => a.active !== false);
  if (!alerts.length) {
    ui.alertList.replaceChildren(el("li", { class: "muted" }, t("dispatch.alert.none")));
    return;
  }
  ui.alertList.replaceChildren(...alerts.map((a) => el("li", { dataset: { alert: a.id } },
    el("strong", {}, a.header || a.header_text),
    a.effect ? el("span", { class: "pill warning" }, t(`dispatch.effect.${a.effect}`)) : null,
    a.description || a.description_text ? el("p", {}, a.description || a.description_text) : null,
    el("button", { type: "button", onclick: () => endAlert(a.id) }, t("dispatch.alert.end_now")))));
}

async function endAlert(id) {
  try {
    await api(`/api/v1/transport/alerts/${encodeURIComponent(id)}`, { method: "DELETE" });
    await loadAlerts();
  } catch (error) {
    ui.alertStatus.textContent = t("common.error", { detail: error.message });
  }
}

function localToIso(value) {
  // datetime-local has no zone: it is read in the building's zone (WITA, +08:00).
  return value ? `${value}:00+08:00` : undefined;
}

ui.alertForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(ui.alertForm);
  const header = String(form.get("header") || "").trim();
  if (!header) {
    ui.alertStatus.className = "error";
    ui.alertStatus.textContent = t("dispatch.alert.header_required");
    $("alert-header").focus();
    return;
  }
  const body = {
    header,
    description: String(form.get("description") || "").trim() || undefined,
    effect: form.get("effect"),
    route_id: form.get("route") || undefined,
    stop_id: form.get("stop") || undefined,
    starts_at: localToIso(form.get("start")),
    ends_at: localToIso(form.get("end")),
  };
  try {
    await api("/api/v1/transport/alerts", { method: "POST", body });
    ui.alertStatus.className = "success";
    ui.alertStatus.textContent = t("dispatch.alert.done");
    ui.alertForm.reset();
    await loadAlerts();
  } catch (error) {
    ui.alertStatus.className = "error";
    ui.alertStatus.textContent = t("common.error", { detail: error.message });
  }
});

function chosenTrip() {
  const [trip, serviceDate] = (ui.assignTrip.value || "").split("|");
  return { trip, serviceDate };
}

async function dispatchAction(run, done) {
  try {
    await run();
    ui.assignStatus.className = "success";
    ui.assignStatus.textContent = done;
    announce(done);
  } catch (error) {
    ui.assignStatus.className = "error";
    ui.assignStatus.textContent = t("common.error", { detail: error.message });
  }
}

ui.assignForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const vehicle = ui.assignVehicle.value;
  const { trip, serviceDate } = chosenTrip();
  if (!vehicle || !trip) return;
  dispatchAction(() => api("/api/v1/transport/assignments", {
    method: "POST", body: { vehicle, trip_id: trip, service_date: serviceDate },
  }), t("dispatch.assign.done", { vehicle, trip }));
});

$("cancel-trip").addEventListener("click", () => {
  const { trip, serviceDate } = chosenTrip();
  if (!trip) return;
  dispatchAction(() => api("/api/v1/transport/cancellations", {
    method: "POST", body: { trip_id: trip, service_date: serviceDate },
  }), t("dispatch.assign.cancelled", { trip }));
});

function connect() {
  const source = liveStream("/api/v1/transport/live/stream", {
    vehicles: (update) => {
      const rows = listOf(update, "vehicles");
      applyVehicles(rows, { full: Boolean(update && update.full) });
      announce(t("dispatch.announce.moved", { count: rows.length }));
    },
    vehicle: (row) => applyVehicles([row]),
    resync: () => loadLive(),
  }, ui.live);
  source.addEventListener("open", () => {
    ui.live.dataset.live = "open";
    // Positions may have moved between the first read and the subscription.
    loadLive().catch(() => {});
  });
  source.addEventListener("error", () => { ui.live.dataset.live = "reconnecting"; });
  view.source = source;
}

async function start() {
  try {
    await loadNetwork();
    await loadLive();
  } catch (error) {
    showError(ui.canvas, error, start);
    return;
  }
  connect();
  loadAlerts().catch((error) => showError(ui.alertList, error));
}

start();
