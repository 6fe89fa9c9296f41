// "My shuttle" (/transport/me): find a trip from my stop, reserve a seat or join the
// waitlist, watch my bus come live, cancel; request a pool car. Built for a 390 px phone
// first (one column), two columns on a desk.
//
// Everything goes through the API with the session cookie: the trip search
// (/transport/trip-finder, seat counts only), the seat service's reservations and
// car bookings, and the public live departures board of my stop for my bus: which
// vehicle is on it and when it is expected from its position (polled every 10 s, so a
// phone that slept catches up on waking).

import { announce, api, el, lang, page, showError, t } from "./common.js";

const $ = (id) => document.getElementById(id);
const TZ = "Asia/Makassar";
// ?refresh= (seconds, at least 2) tunes how often my bus's ETA is asked for; 10 s by default.
const LIVE_MS = Math.max(2, Number(new URLSearchParams(location.search).get("refresh")) || 10) * 1000;
const ui = {
  mine: $("my-reservations"),
  tripForm: $("trip-form"),
  stop: $("t-stop"),
  to: $("t-to"),
  date: $("t-date"),
  tripStatus: $("trip-status"),
  results: $("trip-results"),
  carForm: $("car-form"),
  carStatus: $("car-status"),
  myCars: $("my-car-bookings"),
};
const state = { stops: new Map(), routes: new Map(), reservations: [], live: new Map(), timer: null };
const locale = lang === "id" ? "id-ID" : "en-GB";

const today = () => new Intl.DateTimeFormat("en-CA", { timeZone: TZ }).format(new Date());
const stopName = (id) => state.stops.get(id)?.name || id || "—";
const routeName = (id) => state.routes.get(id)?.short_name || id;
const timeOf = (iso) => (iso ? new Date(iso).toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit", timeZone: TZ }) : "—");
const dayOf = (iso) => new Date(iso).toLocaleDateString(locale, { weekday: "short", day: "numeric", month: "short", timeZone: TZ });

function status(node, kind, text) {
  node.className = kind;
  node.textContent = text;
  announce(text);
}

// --- my reservations and the live bus ---------------------------------------------------------

function reservationState(r) {
  if (r.status === "waitlisted") return t("myshuttle.res.waitlisted", { position: r.waitlist_position ?? "?" });
  return t(`myshuttle.res.${r.status}`);
}

/** My bus, as the live departures board of my stop sees it: which vehicle, when it is
 *  expected (from its position and the route's recent running times), how late. */
function liveBlock(r) {
  const live = state.live.get(`${r.trip_id}|${r.service_date}|${r.from_stop}`);
  if (!live) return null;
  const lines = [];
  if (live.status === "cancelled") {
    lines.push(el("p", { class: "error", "data-testid": "my-eta" }, t("myshuttle.trip.cancelled")));
  } else if (live.expected_at) {
    const minutes = Math.max(0, Math.round((Date.parse(live.expected_at) - Date.now()) / 60000));
    const late = Math.round((live.delay_s || 0) / 60);
    lines.push(el("p", { "data-testid": "my-eta", dataset: { expected: live.expected_at, live: String(live.live) } },
      t("myshuttle.live.eta", { time: timeOf(live.expected_at), min: minutes }), " · ",
      live.live ? (late > 0 ? t("myshuttle.live.delayed", { min: late }) : t("myshuttle.live.on_time"))
        : t("myshuttle.live.waiting_bus")));
  }
  return el("div", { class: "bus-live" },
    el("strong", {}, live.live && live.vehicle ? t("myshuttle.live.bus", { vehicle: live.vehicle }) : t("myshuttle.live.heading")),
    lines);
}

function renderMine() {
  const active = state.reservations.filter((r) => ["confirmed", "waitlisted", "boarded"].includes(r.status));
  if (!active.length) {
    ui.mine.replaceChildren(el("p", { class: "muted" }, t("myshuttle.mine.none")));
    return;
  }
  ui.mine.replaceChildren(el("ul", { class: "trip-results" }, active.map((r) => el("li", {
    dataset: { reservation: r.id, trip: r.trip_id, status: r.status },
  },
  el("div", { class: "trip-what" },
    el("strong", {}, `${dayOf(r.departs_at)} · ${timeOf(r.departs_at)} · ${stopName(r.from_stop)}`),
    el("span", {}, `${r.trip_id}${r.to_stop ? ` → ${stopName(r.to_stop)}` : ""}`),
    el("span", { class: r.status === "waitlisted" ? "pill warning" : "pill ok", "data-testid": "reservation-state" },
      reservationState(r))),
  r.status !== "boarded" ? el("button", { type: "button", onclick: () => cancelReservation(r) }, t("myshuttle.res.cancel")) : null,
  liveBlock(r)))));
}

async function loadMine() {
  state.reservations = await api("/api/v1/me/transport/reservations", { query: { active: true } });
  renderMine();
  await refreshLive();
}

/** The live ETA of each reservation leaving within the next hours, from its stop's board. */
async function refreshLive() {
  const soon = Date.now() + 3 * 3600_000;
  const todays = state.reservations.filter((r) => Date.parse(r.departs_at) <= soon
    && ["confirmed", "waitlisted"].includes(r.status));
  const stops = [...new Set(todays.map((r) => r.from_stop))];
  for (const stop of stops) {
    try {
      const board = await api("/api/v1/transport/departures", { query: { stop, limit: 20 } });
      const rows = Array.isArray(board) ? board : board.departures || [];
      for (const row of rows) {
        state.live.set(`${row.trip}|${row.service_date}|${row.stop_id}`, row);
      }
    } catch {
      // The board is a nicety: the reservation itself still shows.
    }
  }
  renderMine();
}

async function cancelReservation(r) {
  try {
    await api(`/api/v1/transport/reservations/${r.id}`, { method: "DELETE" });
    announce(t("myshuttle.res.cancel_done"));
    await loadMine();
  } catch (error) {
    showError(ui.mine, error, loadMine);
  }
}

// --- trip search and reserving ----------------------------------------------------------------

function tripItem(trip) {
  const full = trip.free <= 0;
  return el("li", { dataset: { trip: trip.trip_id, free: trip.free } },
    el("div", { class: "trip-what" },
      el("strong", {}, `${routeName(trip.route_id)} · ${t("myshuttle.trip.departs", { time: timeOf(trip.departs_at), stop: trip.from_stop_name })}`),
      trip.arrives_at ? el("span", {}, t("myshuttle.trip.arrives", { time: timeOf(trip.arrives_at), stop: trip.to_stop_name })) : el("span", {}, `→ ${trip.headsign}`),
      el("span", { class: full ? "pill alarm" : "pill ok", "data-testid": "trip-seats" },
        full ? t("myshuttle.trip.full") : t("myshuttle.trip.free", { free: trip.free, capacity: trip.capacity }))),
    el("button", { type: "button", class: "primary", onclick: (e) => reserve(trip, full, e.currentTarget) },
      full ? t("myshuttle.trip.waitlist") : t("myshuttle.trip.reserve")));
}

async function search(event) {
  event?.preventDefault();
  if (!ui.stop.value || !ui.date.value) return;
  ui.results.replaceChildren();
  try {
    const trips = await api("/api/v1/transport/trip-finder", {
      query: { from_stop: ui.stop.value, to_stop: ui.to.value, date: ui.date.value },
    });
    ui.tripStatus.textContent = trips.length ? t("myshuttle.find.count", { count: trips.length }) : t("myshuttle.find.none");
    ui.results.replaceChildren(...trips.map(tripItem));
  } catch (error) {
    showError(ui.results, error, search);
  }
}

async function reserve(trip, waitlist, button) {
  button.disabled = true;
  try {
    const made = await api("/api/v1/transport/reservations", {
      method: "POST",
      body: { trip_id: trip.trip_id, service_date: trip.service_date, from_stop: trip.from_stop,
              to_stop: trip.to_stop || undefined, waitlist },
    });
    status(ui.tripStatus, "success", t("myshuttle.res.done", { state: reservationState(made) }));
    await Promise.all([loadMine(), search()]);
  } catch (error) {
    status(ui.tripStatus, "error", t("common.error", { detail: error.message }));
    button.disabled = false;
  }
}

// --- pool cars -----------------------------------------------------------------------------------

function localToIso(value) {
  // datetime-local has no zone: it is read in the building's zone (WITA, +08:00).
  return value ? `${value}:00+08:00` : null;
}

function renderCars(bookings) {
  if (!bookings.length) {
    ui.myCars.replaceChildren(el("li", { class: "muted" }, t("myshuttle.car.none")));
    return;
  }
  ui.myCars.replaceChildren(...bookings.map((b) => el("li", { dataset: { booking: b.id, status: b.status } },
    el("div", { class: "trip-what" },
      el("strong", {}, t("myshuttle.car.line", { purpose: b.purpose, destination: b.destination,
        start: `${dayOf(b.starts_at)} ${timeOf(b.starts_at)}`, end: timeOf(b.ends_at) })),
      el("span", {}, b.vehicle_id),
      el("span", { class: "pill", "data-testid": "car-state" }, t(`myshuttle.car.state.${b.status}`))),
    ["requested", "approved"].includes(b.status)
      ? el("button", { type: "button", onclick: () => cancelCar(b) }, t("myshuttle.car.cancel")) : null)));
}

async function loadCars() {
  const me = page.user?.id;
  const bookings = await api("/api/v1/transport/car-bookings", { query: { limit: 50 } });
  renderCars(bookings.filter((b) => !me || b.person_id === me)
    .filter((b) => !["cancelled", "rejected", "returned"].includes(b.status)));
}

async function cancelCar(b) {
  try {
    await api(`/api/v1/transport/car-bookings/${b.id}/cancel`, { method: "POST" });
    await loadCars();
  } catch (error) {
    status(ui.carStatus, "error", t("common.error", { detail: error.message }));
  }
}

/** Asks which pool cars are free then and tries them in turn: the database decides, so a
 *  car taken meanwhile (409) just moves on to the next one. */
async function bookCar(event) {
  event.preventDefault();
  const form = new FormData(ui.carForm);
  const purpose = String(form.get("purpose") || "").trim();
  const destination = String(form.get("destination") || "").trim();
  const startsAt = localToIso(form.get("start"));
  const endsAt = localToIso(form.get("end"));
  if (!purpose || !destination || !startsAt || !endsAt) {
    status(ui.carStatus, "error", t("myshuttle.car.required"));
    return;
  }
  if (Date.parse(endsAt) <= Date.parse(startsAt)) {
    status(ui.carStatus, "error", t("myshuttle.car.bad_time"));
    return;
  }
  let lastError = null;
  let cars = [];
  try {
    cars = await api("/api/v1/transport/pool-cars/free", { query: { from: startsAt, to: endsAt } });
  } catch (error) {
    status(ui.carStatus, "error", t("common.error", { detail: error.message }));
    return;
  }
  if (!cars.length) {
    status(ui.carStatus, "error", t("myshuttle.car.no_cars"));
    return;
  }
  for (const car of cars) {
    try {
      const made = await api("/api/v1/transport/car-bookings", {
        method: "POST", body: { vehicle_id: car.id, purpose, destination, starts_at: startsAt, ends_at: endsAt },
      });
      status(ui.carStatus, "success", t("myshuttle.car.done", { state: t(`myshuttle.car.state.${made.status}`) }));
      ui.carForm.reset();
      await loadCars();
      return;
    } catch (error) {
      lastError = error;
      if (error.status !== 409) break;  // only "that car is taken then" moves on to the next car
    }
  }
  status(ui.carStatus, "error", t("common.error", { detail: lastError ? lastError.message : t("myshuttle.car.no_cars") }));
}

// --- start ---------------------------------------------------------------------------------------

async function start() {
  ui.date.value = today();
  try {
    const net = await api("/api/v1/transport/network");
    state.stops = new Map(net.stops.map((s) => [s.id, s]));
    state.routes = new Map(net.routes.map((r) => [r.id, r]));
    const options = net.stops.slice().sort((a, b) => a.name.localeCompare(b.name))
      .map((s) => el("option", { value: s.id }, s.name));
    ui.stop.replaceChildren(...options.map((o) => o.cloneNode(true)));
    ui.to.replaceChildren(el("option", { value: "" }, t("myshuttle.find.any_stop")), ...options);
    const params = new URLSearchParams(location.search);
    if (params.get("stop")) ui.stop.value = params.get("stop");
    if (params.get("to")) ui.to.value = params.get("to");
  } catch (error) {
    showError(ui.results, error, start);
    return;
  }
  ui.tripForm.addEventListener("submit", search);
  ui.carForm.addEventListener("submit", bookCar);
  await Promise.all([loadMine().catch((e) => showError(ui.mine, e, loadMine)), loadCars().catch((e) => showError(ui.myCars, e, loadCars))]);
  state.timer = setInterval(() => refreshLive().catch(() => {}), LIVE_MS);
}

start();
