// Live floor map for facility managers, admins and technicians.
//
// One floor is drawn as an inline SVG in metres (the layout's coordinates are
// the viewBox), built in a single DocumentFragment and appended once, so a
// 500-desk floor costs one layout, not 500. Live changes arrive over SSE and
// touch only the changed cells (an attribute and a text node each). Every
// state has a colour, a pattern and a letter so the map reads without colour.
// Names are shown only when the API sent them: it leaves them out for
// technicians, and no NIP ever reaches this page.

import { api, announce, el, lang, liveStream, showError, svg, t } from "./common.js";

const STATES = ["free", "booked", "checked_in", "occupied", "away", "unavailable"];
const FILTERS = ["building", "floor", "zone", "agency"];
const LOCALE = lang === "id" ? "id-ID" : "en-GB";
const PATTERN = (state) => `ruang-pat-${state}`;

const $ = (id) => document.getElementById(id);
const ui = {
  live: document.querySelector(".map-live"),
  form: $("map-filters"),
  selects: Object.fromEntries(FILTERS.map((f) => [f, $(`f-${f}`)])),
  title: $("map-floor-title"),
  canvas: $("map-canvas"),
  legend: $("map-legend"),
  zoneCounts: $("map-zone-counts"),
  panel: $("map-panel"),
  panelTitle: $("map-panel-title"),
  panelFacts: $("map-panel-facts"),
  panelTimeline: $("map-panel-timeline"),
  panelClose: $("map-panel-close"),
};

const view = {
  tree: null,          // /api/v1/sites/tree
  floors: new Map(),   // floor id -> {floor, building, site}
  sel: { building: "", floor: "", zone: "", agency: "" },
  map: null,           // the last FloorMap
  desks: new Map(),    // desk id -> MapDesk (kept current by the stream)
  cells: new Map(),    // desk id -> its <g> in the SVG
  zoneNames: new Map(),
  source: null,        // EventSource of the shown floor
  prefetch: null,      // {key, promise}: the map requested before the site tree came
  opens: 0,            // stream (re)connections; a map read before the latest one may miss changes
  loading: null,       // {seq, opensAtStart} of the map fetch in flight
  queued: [],          // stream updates that arrived while a fetch was in flight
  loadSeq: 0,
  openDesk: null,      // desk id shown in the side panel
  marked: false,
};

// --- selection <-> URL --------------------------------------------------------------

function readQuery() {
  const params = new URLSearchParams(location.search);
  return Object.fromEntries(FILTERS.map((f) => [f, params.get(f) || ""]));
}

/** Puts the selection in the URL (shareable); other parameters such as ?lang= stay. */
function writeQuery(push) {
  const params = new URLSearchParams(location.search);
  for (const f of FILTERS) params.delete(f);
  for (const f of FILTERS) if (view.sel[f]) params.append(f, view.sel[f]);  // one stable order
  const url = `${location.pathname}?${params}`;
  if (url === location.pathname + location.search) return;
  history[push ? "pushState" : "replaceState"](null, "", url);
}

/** Makes a (possibly hand-edited or stale) selection valid against the site tree. */
function normalise(wanted) {
  const sel = { ...wanted };
  const buildings = view.tree.sites.flatMap((s) => s.buildings);
  if (sel.floor && view.floors.has(sel.floor)) sel.building = view.floors.get(sel.floor).building.id;
  let building = buildings.find((b) => b.id === sel.building)
    || buildings.find((b) => b.floors.length) || buildings[0];
  sel.building = building ? building.id : "";
  const floors = building ? building.floors : [];
  if (!floors.some((f) => f.id === sel.floor)) sel.floor = floors[0] ? floors[0].id : "";
  const zones = sel.floor ? view.floors.get(sel.floor).floor.zones : [];
  if (!zones.some((z) => z.id === sel.zone)) sel.zone = "";
  if (!zones.some((z) => z.reserved_for_agency === sel.agency)) sel.agency = "";
  return sel;
}

function fillSelect(select, options, value) {
  select.replaceChildren(...options.map(([v, label, group]) => {
    const option = el("option", { value: v }, label);
    option.selected = v === value;
    if (group) option.dataset.group = group;
    return option;
  }));
  select.disabled = options.length <= 1 && select !== ui.selects.building;
}

function renderFilters() {
  const { sel } = view;
  const multiSite = view.tree.sites.length > 1;
  fillSelect(ui.selects.building, view.tree.sites.flatMap((s) => s.buildings.map(
    (b) => [b.id, multiSite ? `${s.name} — ${b.name}` : b.name])), sel.building);
  const building = view.tree.sites.flatMap((s) => s.buildings).find((b) => b.id === sel.building);
  fillSelect(ui.selects.floor, (building?.floors || []).map((f) => [f.id, f.name]), sel.floor);
  const zones = sel.floor ? view.floors.get(sel.floor).floor.zones : [];
  fillSelect(ui.selects.zone, [["", t("map.filter.all_zones")],
    ...zones.map((z) => [z.id, z.name])], sel.zone);
  const agencies = [...new Set(zones.map((z) => z.reserved_for_agency).filter(Boolean))].sort();
  fillSelect(ui.selects.agency, [["", t("map.filter.all_agencies")],
    ...agencies.map((a) => [a, a])], sel.agency);
}

async function select(wanted, { push }) {
  const floorBefore = view.sel.floor;
  view.sel = normalise(wanted);
  writeQuery(push);
  renderFilters();
  const floor = view.sel.floor;
  const reconnect = floor !== floorBefore || !view.source;
  if (reconnect) disconnect();
  await loadMap();
  // Subscribed after the map is drawn so the first paint does not share the
  // server with the stream; changes in between are caught by the re-read on open.
  if (reconnect && view.sel.floor === floor && !view.source) connect();
}

// --- map data -----------------------------------------------------------------------

/** Fetches the map; a newer fetch or a reconnection during it wins (see `view.opens`). */
async function loadMap() {
  const { floor, zone, agency } = view.sel;
  if (!floor) {
    ui.title.textContent = t("map.no_floors");
    ui.canvas.replaceChildren();
    return;
  }
  const seq = ++view.loadSeq;
  view.loading = { seq, opensAtStart: view.opens };
  let data;
  try {
    data = await fetchMap({ floor, zone, agency });
  } catch (error) {
    if (seq === view.loadSeq) {
      view.loading = null;
      showError(ui.canvas, error, () => loadMap());
    }
    return;
  }
  if (seq !== view.loadSeq) return;  // the selection changed meanwhile
  if (!view.marked) performance.mark("ruang-map-data");  // bench: time spent before drawing
  const stale = view.loading.opensAtStart !== view.opens;
  view.loading = null;
  show(data);
  // Updates that raced the fetch are applied on top, in order: each carries
  // the desk as re-read after its change, so the last one is never older.
  const queued = view.queued.splice(0);
  for (const update of queued) applyUpdate(update, { quiet: true });
  if (stale) loadMap();  // the stream reconnected mid-fetch: changes may be missing
}

const mapKey = ({ floor, zone, agency }) => JSON.stringify([floor, zone || "", agency || ""]);

function fetchMap(sel) {
  // The first load may reuse the request started before the site tree arrived.
  const early = view.prefetch;
  view.prefetch = null;
  if (early && early.key === mapKey(sel)) return early.promise;
  return api(`/api/v1/floors/${encodeURIComponent(sel.floor)}/map`,
    { query: { zone: sel.zone, agency: sel.agency } });
}

function sameDesks(a, b) {
  if (!a || a.floor.id !== b.floor.id || a.desks.length !== b.desks.length) return false;
  return a.desks.every((d, i) => d.id === b.desks[i].id);
}

/** Shows a fetched map: cell updates when only states changed (keeps focus), else a redraw. */
function show(data) {
  const sameCells = sameDesks(view.map, data) && view.cells.size === data.desks.length;
  view.map = data;
  view.zoneNames = new Map(data.zones.map((z) => [z.id, z.name]));
  if (sameCells) {
    applyDesks(data.desks);
    redrawRooms(data.rooms);
  } else {
    view.desks = new Map(data.desks.map((d) => [d.id, d]));
    draw(data);
  }
  renderCounts();
  if (view.openDesk && view.desks.has(view.openDesk)) renderPanelFacts();
  else if (view.openDesk) closePanel(false);
}

// --- drawing ------------------------------------------------------------------------

const num = (v) => Math.round(v * 1000) / 1000;  // short attribute strings, no float noise

/** Patterns matching ruang.css's swatches; sizes are metres, so they scale with the plan. */
function patterns() {
  const p = (state, ...shapes) => svg("pattern", {
    id: PATTERN(state), patternUnits: "userSpaceOnUse", width: 0.3, height: 0.3,
    patternTransform: state === "booked" || state === "unavailable" ? "rotate(45)" : undefined,
  }, svg("rect", { class: `pat-bg pat-${state}-bg`, width: 0.3, height: 0.3 }), ...shapes);
  return svg("defs", {},
    p("booked", svg("rect", { class: "pat-booked-fg", width: 0.14, height: 0.3 })),
    p("occupied", svg("circle", { class: "pat-occupied-fg", cx: 0.15, cy: 0.15, r: 0.085 })),
    p("away", svg("path", { class: "pat-away-fg", d: "M0 0L.3 .3M.3 0L0 .3" })),
    p("unavailable", svg("rect", { class: "pat-unavailable-fg", width: 0.12, height: 0.3 })),
  );
}

function bounds(data) {
  const f = data.floor;
  let maxX = f.width || 0, maxY = f.height || 0;
  for (const [x, y] of f.outline || []) { maxX = Math.max(maxX, x); maxY = Math.max(maxY, y); }
  for (const item of [...data.desks, ...data.rooms]) {
    if (item.x === null || item.y === null) continue;
    maxX = Math.max(maxX, item.x + (item.w || 1.6));
    maxY = Math.max(maxY, item.y + (item.h || 0.8));
  }
  return { width: maxX || 10, height: maxY || 6 };
}

function deskLabel(desk) {
  const values = { id: desk.id, state: t(`map.state.${desk.state}`), name: desk.occupant };
  return t(desk.occupant ? "map.desk_label_named" : "map.desk_label", values);
}

/** One desk cell: the rect takes its colour/pattern from CSS by data-state. */
function deskCell(desk, x, y) {
  const w = desk.w || 1.6, h = desk.h || 0.8;
  const size = num(Math.min(h * 0.62, w * 0.5));
  return svg("g", {
    class: "desk", "data-id": desk.id, "data-state": desk.state, "data-mode": desk.mode,
    tabindex: 0, role: "button", "aria-label": deskLabel(desk),
  },
  svg("rect", { class: "cell", x: num(x), y: num(y), width: num(w), height: num(h), rx: 0.08 }),
  svg("text", { class: "letter", x: num(x + w / 2), y: num(y + h / 2), "font-size": size,
    "aria-hidden": "true" }, document.createTextNode(t(`map.letter.${desk.state}`))));
}

// "In use, not booked" (radar senses people, no booking) and "booked, nobody yet" are
// the room states a facility manager acts on; otherwise the sensor's reading.
function roomState(room) {
  if (room.in_use_not_booked) return "in_use_not_booked";
  if (room.booked && room.state !== "occupied") return "booked";
  return room.state || "unknown";
}

function roomCell(room) {
  const state = roomState(room);
  const label = t("map.room_label", { name: room.name, state: t(`map.room.${state}`),
    capacity: room.capacity });
  const w = room.w || 3, h = room.h || 2;
  return svg("g", { class: "room", "data-id": room.id, "data-state": state, role: "img",
    "aria-label": label },
  svg("rect", { class: "cell", x: num(room.x), y: num(room.y), width: num(w), height: num(h),
    rx: 0.12 }),
  svg("text", { class: "room-name", x: num(room.x + 0.2), y: num(room.y + 0.45),
    "font-size": 0.38, "aria-hidden": "true" }, document.createTextNode(room.name)),
  svg("text", { class: "letter", x: num(room.x + w / 2), y: num(room.y + h / 2 + 0.15),
    "font-size": 0.6, "aria-hidden": "true" },
  document.createTextNode(state === "unknown" ? "?" : t(`map.letter.${state}`))));
}

function draw(data) {
  const f = data.floor;
  const building = view.floors.get(f.id)?.building;
  ui.title.textContent = t("map.floor_title", { building: building?.name || f.building_id,
    floor: f.name });
  const { width, height } = bounds(data);
  // Desks the layout has not placed yet go in rows under the plan rather than vanish.
  const unplaced = data.desks.filter((d) => d.x === null || d.y === null);
  const perRow = Math.max(1, Math.floor(width / 2));
  const extra = unplaced.length ? Math.ceil(unplaced.length / perRow) * 1.2 + 0.6 : 0;
  const pad = 0.4;
  const root = svg("svg", {
    class: "floor-svg", xmlns: "http://www.w3.org/2000/svg",
    viewBox: `${-pad} ${-pad} ${num(width + 2 * pad)} ${num(height + extra + 2 * pad)}`,
    preserveAspectRatio: "xMidYMin meet", role: "group",
    "aria-label": t("map.svg_label", { floor: f.name, count: data.desks.length }),
  });
  const fragment = document.createDocumentFragment();
  fragment.append(patterns());
  const outline = f.outline && f.outline.length > 2 ? f.outline
    : [[0, 0], [width, 0], [width, height], [0, height]];
  fragment.append(svg("polygon", { class: "outline", points: outline.map(
    ([x, y]) => `${num(x)},${num(y)}`).join(" "), "aria-hidden": "true" }));
  const rooms = svg("g", { class: "rooms" });
  for (const room of data.rooms) if (room.x !== null && room.y !== null) rooms.append(roomCell(room));
  fragment.append(rooms);
  const desks = svg("g", { class: "desks" });
  view.cells = new Map();
  let i = 0;
  for (const desk of data.desks) {
    let x = desk.x, y = desk.y;
    if (x === null || y === null) {
      x = (i % perRow) * 2;
      y = height + 0.6 + Math.floor(i / perRow) * 1.2;
      i += 1;
    }
    const cell = deskCell(desk, x, y);
    view.cells.set(desk.id, cell);
    desks.append(cell);
  }
  fragment.append(desks);
  root.append(fragment);
  const children = [root];
  if (!data.desks.length) children.push(el("p", { class: "hint" }, t("map.no_desks")));
  ui.canvas.replaceChildren(...children);  // the only time the document changes for a draw
  ui.canvas.dataset.desks = String(data.desks.length);
  if (!view.marked) {
    view.marked = true;
    performance.mark("ruang-map-built");
    // After the frame that paints it: what a person would see, not just DOM built.
    requestAnimationFrame(() => setTimeout(() => {
      performance.mark("ruang-map-rendered");
      ui.canvas.dataset.rendered = "1";
    }, 0));
  }
}

function redrawRooms(rooms) {
  const group = ui.canvas.querySelector(".rooms");
  if (!group) return;
  const cells = rooms.filter((r) => r.x !== null && r.y !== null).map(roomCell);
  group.replaceChildren(...cells);
}

/** Replaces the cells of rooms whose sensor state changed; returns how many changed. */
function applyRooms(rooms) {
  let changed = 0;
  for (const room of rooms) {
    if (view.map) {
      const i = view.map.rooms.findIndex((r) => r.id === room.id);
      if (i >= 0) view.map.rooms[i] = room;
    }
    const cell = ui.canvas.querySelector(`.rooms [data-id="${CSS.escape(room.id)}"]`);
    if (!cell || cell.dataset.state === roomState(room)) continue;  // not drawn, or unchanged
    cell.replaceWith(roomCell(room));
    changed += 1;
  }
  return changed;
}

/** Updates only cells whose state or occupant changed; returns how many changed. */
function applyDesks(desks) {
  let changed = 0;
  for (const desk of desks) {
    const before = view.desks.get(desk.id);
    const cell = view.cells.get(desk.id);
    if (!before || !cell) continue;  // filtered out of this view
    view.desks.set(desk.id, desk);
    if (before.state === desk.state && before.occupant === desk.occupant) continue;
    changed += 1;
    cell.dataset.state = desk.state;
    cell.setAttribute("aria-label", deskLabel(desk));
    cell.lastChild.firstChild.nodeValue = t(`map.letter.${desk.state}`);
  }
  return changed;
}

// --- counts -------------------------------------------------------------------------

/** Counts of the desks shown, from the same data as the cells, so they never disagree. */
function counts() {
  const floor = Object.fromEntries(STATES.map((s) => [s, 0]));
  const zones = new Map((view.map?.zones || []).map((z) => [z.id,
    Object.fromEntries(STATES.map((s) => [s, 0]))]));
  for (const desk of view.desks.values()) {
    floor[desk.state] += 1;
    if (desk.zone && zones.has(desk.zone)) zones.get(desk.zone)[desk.state] += 1;
  }
  return { floor, zones };
}

const swatch = (state) => el("span", { class: `state-swatch ${state}`, "aria-hidden": "true" });

function renderCounts() {
  const c = counts();
  ui.legend.replaceChildren(...STATES.map((s) => el("li", { dataset: { state: s } },
    swatch(s), el("span", { class: "letter-key", "aria-hidden": "true" }, t(`map.letter.${s}`)),
    el("span", { class: "label" }, t(`map.state.${s}`)),
    el("span", { class: "count", dataset: { count: c.floor[s] } }, String(c.floor[s])))));
  const total = (row) => STATES.reduce((sum, s) => sum + row[s], 0);
  const head = el("tr", {}, el("th", { scope: "col" }, t("map.counts.zone")),
    ...STATES.map((s) => el("th", { scope: "col", title: t(`map.state.${s}`) }, swatch(s),
      el("span", { "aria-hidden": "true" }, t(`map.letter.${s}`)),
      el("span", { class: "visually-hidden" }, t(`map.state.${s}`)))),
    el("th", { scope: "col" }, t("map.counts.total")));
  const row = (name, values, attrs) => el("tr", attrs, el("th", { scope: "row" }, name),
    ...STATES.map((s) => el("td", { dataset: { state: s } }, String(values[s]))),
    el("td", {}, String(total(values))));
  ui.zoneCounts.replaceChildren(el("thead", {}, head), el("tbody", {},
    ...[...c.zones].map(([id, values]) => row(view.zoneNames.get(id) || id, values,
      { dataset: { zone: id } })),
    row(t("map.counts.floor"), c.floor, { class: "floor-total" })));
}

// --- live stream --------------------------------------------------------------------

function applyUpdate(update, { quiet = false } = {}) {
  const desks = applyDesks(update.desks);
  // Older servers send no `rooms`; room sensors change rooms only, never the desk counts.
  const rooms = applyRooms(update.rooms || []);
  if (!desks && !rooms) return;
  if (desks) renderCounts();
  if (desks && view.openDesk && update.desks.some((d) => d.id === view.openDesk)) {
    renderPanelFacts();
    loadTimeline(view.openDesk);
  }
  if (quiet) return;
  const said = [];
  if (desks) said.push(t("map.announce.changed", { count: desks }));
  if (rooms) said.push(t("map.announce.rooms_changed", { count: rooms }));
  announce(said.join(". "));
}

function disconnect() {
  if (view.source) view.source.close();
  view.source = null;
  view.queued = [];  // updates of the previous floor
  ui.live.dataset.live = "connecting";
  ui.live.textContent = t("map.connecting");
}

function connect() {
  disconnect();
  if (!view.sel.floor) return;
  const source = liveStream(`/api/v1/floors/${encodeURIComponent(view.sel.floor)}/stream`, {
    desks: (update) => {
      if (source !== view.source) return;
      if (view.loading) view.queued.push(update);
      else applyUpdate(update);
    },
    resync: () => {
      // The server dropped changes for us: the whole map is re-read.
      if (source !== view.source) return;
      announce(t("map.announce.reloaded"));
      loadMap();
    },
  }, ui.live);
  source.addEventListener("open", () => {
    if (source !== view.source) return;
    view.opens += 1;
    ui.live.dataset.live = "open";
    // The first map may have been read before the subscription existed, and a
    // reconnection may have missed changes: re-read (cells update in place).
    if (!view.loading && view.map) loadMap();
  });
  source.addEventListener("error", () => {
    if (source === view.source) ui.live.dataset.live = "reconnecting";
  });
  view.source = source;
}

// --- side panel ---------------------------------------------------------------------

function fact(label, value) {
  return [el("dt", {}, label), el("dd", {}, value)];
}

function renderPanelFacts() {
  const desk = view.desks.get(view.openDesk);
  if (!desk) return;
  ui.panelTitle.textContent = desk.label && desk.label !== desk.id ? `${desk.id} — ${desk.label}` : desk.id;
  ui.panel.dataset.desk = desk.id;
  const features = desk.features.map((f) => t(`map.feature.${f}`)).join(", ") || t("common.none");
  ui.panelFacts.replaceChildren(
    ...fact(t("map.panel.state"), [swatch(desk.state), t(`map.state.${desk.state}`)]),
    ...(desk.occupant ? fact(t("map.panel.occupant"), desk.occupant) : []),
    ...fact(t("map.panel.zone"), view.zoneNames.get(desk.zone) || desk.zone || "—"),
    ...fact(t("map.panel.mode"), t(`map.mode.${desk.mode}`)),
    ...fact(t("map.panel.features"), features),
  );
}

function timeIn(timezone) {
  const format = new Intl.DateTimeFormat(LOCALE, { hour: "2-digit", minute: "2-digit",
    timeZone: timezone || undefined });
  return (iso) => (iso ? format.format(new Date(iso)) : "—");
}

function timelineItem(entry, time) {
  const parts = [t(`map.timeline.kind.${entry.kind}`)];
  if (entry.kind === "booked" && entry.until) parts.push(t("map.timeline.until", { time: time(entry.until) }));
  if (entry.status && entry.kind === "booked") parts.push(`(${t(`map.timeline.status.${entry.status}`)})`);
  if (entry.reason) parts.push(`(${t(`map.timeline.reason.${entry.reason}`)})`);
  return el("li", { dataset: { kind: entry.kind } },
    el("time", { datetime: entry.at }, time(entry.at)), " ", parts.join(" "),
    entry.person ? el("span", { class: "person" }, ` — ${entry.person}`) : null);
}

let timelineSeq = 0;
async function loadTimeline(deskId) {
  const seq = ++timelineSeq;
  try {
    const data = await api(`/api/v1/desks/${encodeURIComponent(deskId)}/timeline`);
    if (seq !== timelineSeq) return;
    const time = timeIn(data.timezone);
    ui.panelTimeline.replaceChildren(data.entries.length
      ? el("ol", { class: "timeline" }, data.entries.map((e) => timelineItem(e, time)))
      : el("p", { class: "hint" }, t("map.timeline.empty")));
  } catch (error) {
    if (seq === timelineSeq) showError(ui.panelTimeline, error, () => loadTimeline(deskId));
  }
}

function openPanel(deskId) {
  for (const cell of ui.canvas.querySelectorAll(".desk[aria-pressed]")) cell.removeAttribute("aria-pressed");
  view.openDesk = deskId;
  view.cells.get(deskId)?.setAttribute("aria-pressed", "true");
  renderPanelFacts();
  ui.panelTimeline.replaceChildren(el("p", { class: "hint" }, t("common.loading")));
  ui.panel.hidden = false;
  ui.panel.focus();  // screen readers read the panel's title; on a phone it scrolls into view
  loadTimeline(deskId);
}

function closePanel(restoreFocus = true) {
  const deskId = view.openDesk;
  view.openDesk = null;
  ui.panel.hidden = true;
  const cell = deskId && view.cells.get(deskId);
  if (cell) {
    cell.removeAttribute("aria-pressed");
    if (restoreFocus) cell.focus();
  }
}

// --- wiring -------------------------------------------------------------------------

function wire() {
  // One listener for all cells (delegation): nothing per desk to add or remove.
  ui.canvas.addEventListener("click", (event) => {
    const cell = event.target.closest?.(".desk");
    if (cell) openPanel(cell.dataset.id);
  });
  ui.canvas.addEventListener("keydown", (event) => {
    const cell = event.target.closest?.(".desk");
    if (!cell || (event.key !== "Enter" && event.key !== " ")) return;
    event.preventDefault();  // Space would scroll the page
    openPanel(cell.dataset.id);
  });
  ui.panelClose.addEventListener("click", () => closePanel());
  ui.panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closePanel();
  });
  ui.form.addEventListener("submit", (event) => event.preventDefault());
  ui.form.addEventListener("change", (event) => {
    const wanted = { ...view.sel, [event.target.name]: event.target.value };
    // A new building or floor starts unfiltered: zone ids belong to one floor.
    if (event.target.name === "building") Object.assign(wanted, { floor: "", zone: "", agency: "" });
    if (event.target.name === "floor") Object.assign(wanted, { zone: "", agency: "" });
    select(wanted, { push: true });
  });
  window.addEventListener("popstate", () => select(readQuery(), { push: false }));
}

async function start() {
  wire();
  // A shared link names its floor: ask for the map and the site tree at once
  // rather than one after the other (the tree only validates the selection).
  const wanted = readQuery();
  if (wanted.floor) {
    const promise = api(`/api/v1/floors/${encodeURIComponent(wanted.floor)}/map`,
      { query: { zone: wanted.zone, agency: wanted.agency } });
    promise.catch(() => {});  // a failure is reported by loadMap, or the request is unused
    view.prefetch = { key: mapKey(wanted), promise };
  }
  try {
    view.tree = await api("/api/v1/sites/tree");
    performance.mark("ruang-map-tree");
  } catch (error) {
    showError(ui.canvas, error, () => location.reload());
    return;
  }
  for (const site of view.tree.sites) {
    for (const building of site.buildings) {
      for (const floor of building.floors) view.floors.set(floor.id, { floor, building, site });
    }
  }
  await select(wanted, { push: false });
}

start();
