// Room panel (/panel/{room}?k=...): the tablet at a meeting room's door.
// Now / next / free-until, "book now" for 15/30/60 min, check-in, read from a few metres.
// Offline it keeps reading: the last schedule is cached in localStorage and the
// now/next lines are recomputed from it every few seconds, with its age always on
// screen. It calls only the panel API (authorised by the room's key), which never
// sends organisers' names and sends titles only where the site allows them.
import { api, page, t } from "./common.js";

const REFRESH_MS = Math.max(2, Number(new URLSearchParams(location.search).get("refresh")) || 20) * 1000;
const CACHE_KEY = `ruang.panel.${page.room}`;
const LOCALE = page.lang === "id" ? "id-ID" : "en-GB";

const ui = {
  status: document.getElementById("panel-status"),
  state: document.getElementById("panel-state"),
  now: document.getElementById("panel-now"),
  freeUntil: document.getElementById("panel-free-until"),
  today: document.getElementById("panel-today"),
  updated: document.getElementById("panel-updated"),
  message: document.getElementById("panel-message"),
  clock: document.getElementById("panel-clock"),
  checkin: document.getElementById("panel-checkin"),
  books: [...document.querySelectorAll(".panel-book")],
};

let schedule = null;   // the last schedule: from the API, or from the cache after a reload
let fetchedAt = null;  // when it arrived (ms since epoch)
let online = false;    // whether the last refresh reached the API

function hhmm(iso) {
  return new Date(iso).toLocaleTimeString(LOCALE,
    { hour: "2-digit", minute: "2-digit", timeZone: schedule?.timezone });
}

function loadCache() {
  try {
    const saved = JSON.parse(localStorage.getItem(CACHE_KEY) || "null");
    if (saved && saved.schedule && saved.fetchedAt) ({ schedule, fetchedAt } = saved);
  } catch { /* a damaged cache is ignored */ }
}

function active(m) { return m.status === "booked" || m.status === "checked_in"; }

/** Now / next from the cached day, at the browser's clock: right even when offline. */
function render() {
  const nowMs = Date.now();
  ui.clock.textContent = new Date(nowMs).toLocaleTimeString(LOCALE,
    { hour: "2-digit", minute: "2-digit", timeZone: schedule?.timezone });
  if (!schedule) {
    ui.state.textContent = online ? t("panel.loading") : t("panel.no_data");
    return;
  }
  // Today's meetings and the next ones after midnight (`later`): the cache stays right
  // for a panel that is offline across the day's end.
  const meetings = [...schedule.today, ...(schedule.later ?? [])].filter(active);
  const current = meetings.find((m) => Date.parse(m.starts_at) <= nowMs && nowMs < Date.parse(m.ends_at));
  const next = meetings.find((m) => Date.parse(m.starts_at) > nowMs);
  const state = current ? "busy" : "free";
  ui.status.dataset.state = state;
  ui.state.textContent = t(`panel.state.${state}`);
  ui.now.textContent = current
    ? t("panel.now", { title: current.title || t("panel.meeting"), start: hhmm(current.starts_at), end: hhmm(current.ends_at) })
    : "";
  ui.freeUntil.textContent = current
    ? (next ? t("panel.next", { start: hhmm(next.starts_at) }) : "")
    : (next ? t("panel.free_until", { time: hhmm(next.starts_at) }) : t("panel.free_all_day"));
  ui.today.replaceChildren(...schedule.today.filter(active).map((m) => {
    const li = document.createElement("li");
    li.dataset.testid = "panel-meeting";
    li.textContent = `${hhmm(m.starts_at)}–${hhmm(m.ends_at)} ${m.title || t("panel.meeting")}`;
    if (m === current) li.className = "current";
    return li;
  }));
  const minutes = Math.floor((nowMs - fetchedAt) / 60000);
  ui.updated.textContent = t("panel.updated", { minutes });
  ui.updated.classList.toggle("stale", !online);
  ui.updated.dataset.minutes = String(minutes);
  // Writes need the network; a room held now cannot be booked on the spot.
  for (const button of ui.books) button.disabled = !online || Boolean(current);
  ui.checkin.disabled = !online || !meetings.some((m) => !m.checked_in
    && Date.parse(m.starts_at) - 15 * 60000 <= nowMs && nowMs < Date.parse(m.ends_at));
}

async function refresh() {
  try {
    schedule = await api(`/api/v1/panel/${encodeURIComponent(page.room)}`, { query: { k: page.key } });
    fetchedAt = Date.now();
    online = true;
    localStorage.setItem(CACHE_KEY, JSON.stringify({ schedule, fetchedAt }));
  } catch {
    online = false;  // keep what is on screen; it says how old it is
  }
  render();
}

async function act(path, body, done) {
  ui.message.textContent = "";
  try {
    await api(`/api/v1/panel/${encodeURIComponent(page.room)}/${path}`,
      { method: "POST", query: { k: page.key }, body });
    ui.message.textContent = done;
  } catch (error) {
    ui.message.textContent = t("panel.failed", { reason: error.message });
  }
  await refresh();
}

for (const button of ui.books) {
  button.addEventListener("click", () => act("book-now", { minutes: Number(button.dataset.minutes) },
    t("panel.booked", { minutes: button.dataset.minutes })));
}
ui.checkin.addEventListener("click", () => act("checkin", undefined, t("panel.checked_in")));
window.addEventListener("online", refresh);
window.addEventListener("offline", () => { online = false; render(); });

loadCache();
render();
await refresh();
setInterval(refresh, REFRESH_MS);
setInterval(render, 5000);
