// "Meja saya": an ASN finds a free desk, books it, and manages their own bookings.
// Times are entered and shown in the site's time zone (not the browser's): a civil
// servant planning from Jakarta still books 08:00 WITA at the IKN office.
import { page, t, api, el, lang } from "./common.js";

const locale = lang === "id" ? "id-ID" : "en-GB";
const FALLBACK_TZ = "Asia/Makassar";
// The features the availability API filters on (it refuses any other name, see
// cloud/api/bookings.py), in the order a person scans for them.
// The features the availability API accepts, from the server (page data).
const FEATURES = page.features || [];
const PAGE_SIZE = 10;
const DEFAULT_HOURS = 4;

// Problem titles of the booking API -> strings in the user's language. Anything
// else falls back to the server's own detail, so no error is ever swallowed.
const PROBLEM_KEYS = {
  "Desk already booked for that time": "me.error.desk_taken",
  "You already have a desk for that time": "me.error.person_taken",
  "Desk unavailable": "me.error.desk_unavailable",
  "Drop-in desk": "me.error.desk_unavailable",
  "Booking too long": "me.error.too_long",
  "Booking in the past": "me.error.past",
  "Too far ahead": "me.error.too_far",
  "Not an extension": "me.error.not_extension",
  "Zone reserved for another agency": "me.error.zone_reserved",
  "Desk assigned to someone else": "me.error.assigned",
  "Guest pass not valid then": "me.error.guest_pass",
  "Booking not cancellable": "me.error.not_cancellable",
  "Booking not active": "me.error.not_active",
  "Booking store busy": "me.error.busy",
};

export function problemMessage(error) {
  const detail = error?.problem?.detail || error?.message || String(error);
  const key = PROBLEM_KEYS[error?.problem?.title];
  if (key) return t(key, { detail });
  if (error?.status === 422) return t("me.error.rule", { detail });
  return t("me.error.generic", { detail });
}

// --- time in a named zone (no library: Intl knows the zones) -----------------

function zoneParts(ms, tz) {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  }).formatToParts(new Date(ms));
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  return { y: get("year"), mo: get("month"), d: get("day"), h: get("hour"), mi: get("minute"),
    s: get("second") };
}

const pad = (n) => String(n).padStart(2, "0");
const dateOf = (p) => `${p.y}-${pad(p.mo)}-${pad(p.d)}`;
const timeOf = (p) => `${pad(p.h)}:${pad(p.mi)}`;

/** The zone's offset from UTC at instant `ms`, in ms. */
function offsetAt(ms, tz) {
  const whole = Math.floor(ms / 1000) * 1000;
  const p = zoneParts(whole, tz);
  return Date.UTC(p.y, p.mo - 1, p.d, p.h, p.mi, p.s) - whole;
}

/** The instant of wall-clock `date` `time` in `tz` (two passes settle a DST edge). */
function zonedToMs(date, time, tz) {
  const [y, mo, d] = date.split("-").map(Number);
  const [h, mi] = time.split(":").map(Number);
  const wall = Date.UTC(y, mo - 1, d, h, mi);
  const first = wall - offsetAt(wall, tz);
  return wall - offsetAt(first, tz);
}

function formatter(tz, options) {
  return new Intl.DateTimeFormat(locale, { timeZone: tz, ...options });
}

// --- state -----------------------------------------------------------------

const state = {
  tree: null,
  floors: new Map(),  // floor id -> {floor, building, site}
  zones: new Map(),   // zone id -> zone
  person: null,       // the caller's own record (agency decides reserved zones)
  results: [],
  shown: 0,
  deskInfo: new Map(), // desk id -> {label, floor, zone}, for naming booked desks
};

const $ = (id) => document.getElementById(id);
const form = $("find-form");
const floorSelect = $("f-floor");
const zoneSelect = $("f-zone");
const dateInput = $("f-date");
const startInput = $("f-start");
const endInput = $("f-end");
const results = $("results");
const bookingStatus = $("booking-status");
const mine = $("mine");
const mineStatus = $("mine-status");

/** The site whose clock the form speaks: the chosen floor's, else the first one. */
function siteTz() {
  const chosen = state.floors.get(floorSelect.value);
  return chosen?.site.timezone || state.tree?.sites[0]?.timezone || FALLBACK_TZ;
}

function setStatus(node, message, kind) {
  node.replaceChildren(message ? el("p", { class: kind, role: kind === "error" ? "alert" : null },
    message) : "");
}

// --- filters ---------------------------------------------------------------

function fillFloors() {
  for (const site of state.tree.sites) {
    for (const building of site.buildings) {
      const group = el("optgroup", { label: building.name });
      for (const floor of building.floors) {
        state.floors.set(floor.id, { floor, building, site });
        for (const zone of floor.zones) state.zones.set(zone.id, zone);
        group.append(el("option", { value: floor.id }, floor.name));
      }
      floorSelect.append(group);
    }
  }
}

function fillZones() {
  const chosen = state.floors.get(floorSelect.value);
  zoneSelect.replaceChildren(el("option", { value: "" }, t("me.find.any_zone")));
  for (const zone of chosen?.floor.zones || []) {
    zoneSelect.append(el("option", { value: zone.id }, zone.name));
  }
  // Zones only mean something within a floor.
  zoneSelect.disabled = !chosen;
}

function fillFeatures() {
  const box = $("f-features");
  box.replaceChildren(...FEATURES.map((name) => el("label", { class: "me-check" },
    el("input", { type: "checkbox", name: "features", value: name }),
    " ", t(`me.feature.${name}`))));
}

/** Today, from the next full hour, for DEFAULT_HOURS: the usual "I need a desk later". */
function setDefaultTimes({ fromNow = false } = {}) {
  const tz = siteTz();
  const now = Date.now();
  let start;
  if (fromNow) {
    start = Math.floor(now / 60000) * 60000;  // this minute: the server allows a short grace
  } else {
    const p = zoneParts(now, tz);
    start = zonedToMs(dateOf(p), `${pad(p.h)}:00`, tz) + 3600_000;
  }
  const s = zoneParts(start, tz);
  const e = zoneParts(start + DEFAULT_HOURS * 3600_000, tz);
  dateInput.value = dateOf(s);
  startInput.value = timeOf(s);
  endInput.value = timeOf(e);
  updateTimeHint();
}

/** The chosen window as instants; an end at or before the start means the next day. */
function chosenWindow() {
  const tz = siteTz();
  if (!dateInput.value || !startInput.value || !endInput.value) return null;
  const start = zonedToMs(dateInput.value, startInput.value, tz);
  let end = zonedToMs(dateInput.value, endInput.value, tz);
  if (end <= start) end += 24 * 3600_000;
  return { start, end, tz };
}

function updateTimeHint() {
  const tz = siteTz();
  const nextDay = startInput.value && endInput.value && endInput.value <= startInput.value;
  $("f-time-hint").textContent = [t("me.find.tz_hint", { tz }),
    nextDay ? t("me.find.next_day") : ""].join(" ").trim();
}

// --- search ----------------------------------------------------------------

/** Only desks this person could actually book: reservable, and not in another agency's zone. */
function bookable(desk) {
  if (desk.mode !== "reservable") return false;
  const agency = desk.reserved_for_agency;
  return !agency || agency === state.person?.agency;
}

function deskPlace(desk) {
  const floor = state.floors.get(desk.floor_id);
  const zone = state.zones.get(desk.zone_id);
  return t("me.desk.place", { floor: floor?.floor.name || desk.floor_id || "—",
    zone: zone?.name || desk.zone_id || "—" });
}

async function search({ quiet = false } = {}) {
  const slot = chosenWindow();
  if (!slot) return;
  const features = [...form.querySelectorAll("input[name=features]:checked")].map((i) => i.value);
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  results.setAttribute("aria-busy", "true");
  if (!quiet) results.replaceChildren(el("p", { class: "muted" }, t("me.find.searching")));
  try {
    const data = await api("/api/v1/availability", { query: {
      start: new Date(slot.start).toISOString(), end: new Date(slot.end).toISOString(),
      floor: floorSelect.value, zone: zoneSelect.value, features: features.join(","),
    } });
    state.results = data.desks.filter(bookable);
    for (const desk of state.results) {
      state.deskInfo.set(desk.id, { label: desk.label || desk.id, place: deskPlace(desk) });
    }
    state.slot = slot;
    state.shown = Math.min(PAGE_SIZE, state.results.length);
    renderResults();
    if (!quiet) {
      setStatus(bookingStatus, state.results.length
        ? t("me.find.count", { count: state.results.length }) : t("me.find.none"), "muted");
    }
  } catch (error) {
    results.replaceChildren(el("p", { class: "error", role: "alert" }, problemMessage(error)));
  } finally {
    button.disabled = false;
    results.setAttribute("aria-busy", "false");
  }
}

function renderResults() {
  if (!state.results.length) {
    results.replaceChildren(el("p", { class: "muted" }, t("me.find.none")));
    return;
  }
  const list = el("ul", { class: "me-desks", "data-testid": "free-desks" },
    state.results.slice(0, state.shown).map(deskCard));
  const rest = state.results.length - state.shown;
  const parts = [
    el("p", { class: "hint" }, t("me.find.showing", { shown: state.shown,
      total: state.results.length })),
    list,
  ];
  if (rest > 0) {
    parts.push(el("button", { type: "button", class: "me-more", onclick: showMore },
      t("me.find.more", { count: Math.min(rest, PAGE_SIZE) })));
  }
  results.replaceChildren(...parts);
}

function showMore() {
  const first = state.shown;
  state.shown = Math.min(state.shown + PAGE_SIZE, state.results.length);
  renderResults();
  // Keep the keyboard where the new items start instead of at the top of the page.
  results.querySelectorAll(".me-desks li button")[first]?.focus();
}

function deskCard(desk) {
  const label = desk.label || desk.id;
  return el("li", { class: "desk-card", dataset: { desk: desk.id } },
    el("div", { class: "desk-info" },
      el("strong", { class: "desk-label" }, label),
      label !== desk.id ? el("span", { class: "muted" }, ` (${desk.id})`) : null,
      el("div", { class: "muted" }, deskPlace(desk)),
      el("ul", { class: "features" }, desk.features.length
        ? desk.features.map((f) => el("li", { class: "pill" }, t(`me.feature.${f}`)))
        : el("li", { class: "muted" }, t("me.desk.no_features")))),
    el("button", { type: "button", class: "primary", "aria-label": t("me.desk.book_label",
      { desk: label }), onclick: (e) => book(desk, e.currentTarget) }, t("me.desk.book")));
}

// --- book ------------------------------------------------------------------

async function book(desk, button) {
  const slot = state.slot;
  button.disabled = true;
  button.textContent = t("me.booking.booking");
  setStatus(bookingStatus, t("me.booking.booking"), "muted");
  try {
    const created = await api("/api/v1/bookings", { method: "POST", body: {
      desk_id: desk.id, person_id: page.user.id,
      starts_at: new Date(slot.start).toISOString(), ends_at: new Date(slot.end).toISOString(),
    } });
    const f = (opts) => formatter(slot.tz, opts);
    setStatus(bookingStatus, t("me.booking.created", {
      desk: desk.label || desk.id,
      date: f({ weekday: "long", day: "numeric", month: "long" }).format(new Date(created.starts_at)),
      start: f({ hour: "2-digit", minute: "2-digit" }).format(new Date(created.starts_at)),
      end: f({ hour: "2-digit", minute: "2-digit" }).format(new Date(created.ends_at)),
    }), "success");
    // The card's button is about to disappear: give focus a stable home.
    bookingStatus.focus();
    await Promise.all([loadMine(), search({ quiet: true })]);
  } catch (error) {
    setStatus(bookingStatus, problemMessage(error), "error");
    button.disabled = false;
    button.textContent = t("me.desk.book");
    // A desk someone else just took is no longer free: refresh what is offered.
    if (error.status === 409) await search({ quiet: true });
  }
}

// --- my bookings -----------------------------------------------------------

function statusText(b) {
  if (b.status === "released" && b.release_reason) {
    const key = `me.reason.${b.release_reason}`;
    const reason = t(key);
    return t("me.status.released_reason", { reason: reason === `[${key}]` ? b.release_reason : reason });
  }
  return t(`me.status.${b.status}`);
}

async function loadMine() {
  const tz = state.tree?.sites[0]?.timezone || FALLBACK_TZ;
  const today = dateOf(zoneParts(Date.now(), tz));
  mine.setAttribute("aria-busy", "true");
  try {
    const rows = await api("/api/v1/bookings", { query: {
      person: page.user.id, from: new Date(zonedToMs(today, "00:00", tz)).toISOString(),
    } });
    renderMine(rows.filter((b) => b.status !== "cancelled"), tz, today);
  } catch (error) {
    mine.replaceChildren(el("p", { class: "error", role: "alert" }, problemMessage(error)),
      el("button", { type: "button", onclick: () => loadMine() }, t("common.retry")));
  } finally {
    mine.setAttribute("aria-busy", "false");
  }
}

function renderMine(rows, tz, today) {
  if (!rows.length) {
    mine.replaceChildren(el("p", { class: "muted" }, t("me.mine.none")));
    return;
  }
  const day = formatter(tz, { weekday: "short", day: "numeric", month: "short" });
  const clock = formatter(tz, { hour: "2-digit", minute: "2-digit" });
  const item = (b) => {
    const info = state.deskInfo.get(b.desk_id);
    const label = b.desk_label || info?.label || b.desk_id;
    const when = t("me.mine.when", { date: day.format(new Date(b.starts_at)),
      start: clock.format(new Date(b.starts_at)), end: clock.format(new Date(b.ends_at)) });
    const active = b.status === "booked" || b.status === "checked_in";
    return el("li", { class: `booking-item status-${b.status}`, dataset: { booking: b.id,
      desk: b.desk_id } },
      el("div", { class: "desk-info" },
        el("strong", { class: "desk-label" }, label),
        el("div", {}, when),
        b.floor_name ? el("div", { class: "muted" },
          t("me.desk.place", { floor: b.floor_name, zone: b.zone_name || "—" }))
          : info?.place ? el("div", { class: "muted" }, info.place) : null,
        el("span", { class: `pill booking-status ${b.status}` }, statusText(b)),
        b.walk_up ? el("span", { class: "muted" }, ` ${t("me.mine.walk_up")}`) : null),
      active ? el("div", { class: "booking-actions" },
        el("button", { type: "button", "aria-label": t("me.mine.extend_label", { desk: label, when }),
          onclick: (e) => extend(b, label, e.currentTarget) }, t("me.mine.extend")),
        b.status === "booked" ? el("button", { type: "button", class: "danger",
          "aria-label": t("me.mine.cancel_label", { desk: label, when }),
          onclick: (e) => cancel(b, label, e.currentTarget) }, t("me.mine.cancel")) : null,
      ) : null);
  };
  const isToday = (b) => dateOf(zoneParts(Date.parse(b.starts_at), tz)) <= today;
  const groups = [["me.mine.today", rows.filter(isToday)],
    ["me.mine.upcoming", rows.filter((b) => !isToday(b))]];
  mine.replaceChildren(...groups.filter(([, list]) => list.length).map(([key, list]) =>
    el("div", { class: "booking-group" },
      el("h3", {}, t(key)),
      el("ul", { class: "me-bookings", "data-testid": key === "me.mine.today"
        ? "bookings-today" : "bookings-upcoming" }, list.map(item)))));
}

async function cancel(b, label, button) {
  button.disabled = true;
  try {
    await api(`/api/v1/bookings/${b.id}/cancel`, { method: "POST" });
    setStatus(mineStatus, t("me.mine.cancelled", { desk: label }), "success");
    mineStatus.focus();
    await Promise.all([loadMine(), search({ quiet: true })]);
  } catch (error) {
    setStatus(mineStatus, problemMessage(error), "error");
    button.disabled = false;
    if (error.status === 409) await loadMine();
  }
}

async function extend(b, label, button) {
  button.disabled = true;
  const tz = state.tree?.sites[0]?.timezone || FALLBACK_TZ;
  try {
    const ends = new Date(Date.parse(b.ends_at) + 3600_000).toISOString();
    const updated = await api(`/api/v1/bookings/${b.id}/extend`, { method: "POST",
      body: { ends_at: ends } });
    setStatus(mineStatus, t("me.mine.extended", { desk: label,
      end: formatter(tz, { hour: "2-digit", minute: "2-digit" }).format(new Date(updated.ends_at)) }),
    "success");
    mineStatus.focus();
    await loadMine();
  } catch (error) {
    setStatus(mineStatus, problemMessage(error), "error");
    button.disabled = false;
  }
}

// --- start -----------------------------------------------------------------

async function start() {
  fillFeatures();
  // Status messages take focus after an action whose button disappears.
  bookingStatus.tabIndex = -1;
  mineStatus.tabIndex = -1;
  form.addEventListener("submit", (e) => { e.preventDefault(); search(); });
  floorSelect.addEventListener("change", () => { fillZones(); updateTimeHint(); });
  startInput.addEventListener("change", updateTimeHint);
  endInput.addEventListener("change", updateTimeHint);
  $("f-now").addEventListener("click", () => setDefaultTimes({ fromNow: true }));
  fillZones();
  const [tree, person] = await Promise.all([
    api("/api/v1/sites/tree").catch(() => ({ sites: [] })),
    // Someone signed in without a roster entry (a bare admin token) can look, not book.
    api("/api/v1/me").catch(() => null),
  ]);
  state.tree = tree;
  state.person = person;
  fillFloors();
  setDefaultTimes();
  if (!person) setStatus(bookingStatus, t("me.no_person"), "error");
  await Promise.all([search({ quiet: true }), loadMine()]);
  document.body.dataset.ready = "true";  // lets tests wait for the first render, not a delay
}

start();
