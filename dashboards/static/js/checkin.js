// QR check-in: the page a phone opens after scanning the code on a desk.
// One big button; the key from the QR URL goes back to the API, which decides.
import { page, t, api, el, lang } from "./common.js";

const locale = lang === "id" ? "id-ID" : "en-GB";
const button = document.getElementById("checkin-button");
const result = document.getElementById("checkin-result");
const desk = page.desk;
const key = page.key;
let siteTz = null;

// Problem titles of cloud/qrcheckin.py -> strings in the user's language.
const PROBLEM_KEYS = {
  "Wrong check-in code": "checkin.error.wrong_key",
  "Desk booked by someone else": "checkin.error.taken",
  "Zone reserved for another agency": "checkin.error.zone_reserved",
  "Desk assigned to someone else": "checkin.error.assigned",
  "Not a person": "checkin.error.not_person",
  "Desk unavailable": "checkin.error.unavailable",
  "Desk not found": "checkin.error.unknown_desk",
};

function problemMessage(error) {
  const title = error?.problem?.title;
  const detail = error?.problem?.detail || error?.message || String(error);
  if (title === "Desk booked by someone else") {
    // The server says until when (site-local HH:MM) but never who: keep it that way.
    const until = /until (\d{1,2}:\d{2})/.exec(detail);
    if (until) return t("checkin.error.taken_until", { time: until[1] });
  }
  const known = PROBLEM_KEYS[title];
  if (known) return t(known, { detail });
  if (error?.status === 403) return t("checkin.error.not_allowed", { detail });
  return t("checkin.error.generic", { detail });
}

function clock(iso) {
  // The site's zone when known; the phone stands at the desk, so its own zone is the fallback.
  return new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit",
    ...(siteTz ? { timeZone: siteTz } : {}) }).format(new Date(iso));
}

function showError(message) {
  result.className = "checkin-result failed";
  result.replaceChildren(
    el("p", { class: "checkin-big", role: "alert" }, message),
    el("p", {}, el("a", { class: "button", href: "/me" }, t("checkin.find_other"))));
}

async function checkIn() {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = t("checkin.working");
  result.className = "checkin-result";
  result.replaceChildren(el("p", { class: "muted" }, t("checkin.working")));
  try {
    const booking = await api(`/api/v1/desks/${encodeURIComponent(desk)}/checkin`,
      { method: "POST", body: { key } });
    result.className = "checkin-result done";
    result.replaceChildren(
      el("p", { class: "checkin-big", "data-testid": "checkin-success" }, "✓ ", t("checkin.success")),
      el("p", {}, t("checkin.success_detail", { desk, end: clock(booking.ends_at) })),
      // A walk-up has no booking behind it: say why the desk is theirs until then.
      booking.walk_up ? el("p", { class: "checkin-note" },
        t("checkin.success_walk_up", { end: clock(booking.ends_at) })) : null);
    // Done: the button would only repeat the same check-in.
    button.hidden = true;
  } catch (error) {
    showError(problemMessage(error));
    button.disabled = false;
    button.textContent = t("checkin.button");
  } finally {
    button.removeAttribute("aria-busy");
  }
}

async function start() {
  if (!key) {
    // A typed or truncated link: say so instead of letting the API answer 422.
    showError(t("checkin.no_key"));
    return;
  }
  try {
    const tree = await api("/api/v1/sites/tree");
    // The desk's site is not in the URL; with one site (the usual case) its zone is certain.
    if (tree.sites.length === 1) siteTz = tree.sites[0].timezone;
  } catch { /* the phone's zone will do */ }
  button.addEventListener("click", checkIn);
  button.disabled = false;
  document.body.dataset.ready = "true";
}

start();
