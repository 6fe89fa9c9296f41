// The bell in the header of every signed-in page: unread count, the latest notifications,
// mark one or all read. Data from /api/v1/me/notifications (the caller's own only).
import { api, announce, el, fmtDateTime, lang, t } from "./common.js";

const POLL_MS = 30_000;
const bell = document.getElementById("notif-bell");
const count = document.getElementById("notif-count");
const panel = document.getElementById("notif-panel");
const list = document.getElementById("notif-list");
const readAll = document.getElementById("notif-read-all");

function showCount(unread) {
  count.textContent = unread > 99 ? "99+" : String(unread);
  count.hidden = unread === 0;
  bell.dataset.unread = String(unread);
  bell.setAttribute("aria-label", unread ? `${t("notif.bell")}: ${t("notif.unread_count", { count: unread })}` : t("notif.bell"));
}

async function refreshCount() {
  try {
    showCount((await api("/api/v1/me/notifications/unread-count")).unread);
  } catch { /* the next poll tries again; the page itself is unaffected */ }
}

function item(n) {
  const read = n.read_at !== null;
  const markButton = read ? null : el("button", {
    type: "button", class: "notif-mark",
    onclick: async () => {
      const left = await api(`/api/v1/me/notifications/${n.id}/read`, { method: "POST" });
      showCount(left.unread);
      await load();
    },
  }, t("notif.mark_read"));
  return el("li", { class: read ? "notif-item read" : "notif-item unread", dataset: { kind: n.kind, id: String(n.id) } },
    el("p", { class: "notif-title" }, n.title),
    el("p", { class: "notif-body" }, n.body),
    el("p", { class: "notif-meta muted" }, fmtDateTime(n.created_at), read ? ` · ${t("notif.read")}` : ""),
    markButton);
}

async function load() {
  list.setAttribute("aria-busy", "true");
  try {
    const data = await api("/api/v1/me/notifications", { query: { limit: 20, lang } });
    showCount(data.unread);
    list.replaceChildren(...(data.items.length ? data.items.map(item)
      : [el("li", { class: "muted" }, t("notif.empty"))]));
  } catch (error) {
    list.replaceChildren(el("li", { class: "error", role: "alert" }, t("common.error", { detail: error.message })));
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

function setOpen(open) {
  panel.hidden = !open;
  bell.setAttribute("aria-expanded", String(open));
  if (open) load();
}

bell.addEventListener("click", () => setOpen(panel.hidden));
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !panel.hidden) { setOpen(false); bell.focus(); }
});
readAll.addEventListener("click", async () => {
  const done = await api("/api/v1/me/notifications/read-all", { method: "POST" });
  announce(t("notif.unread_count", { count: 0 }));
  if (done.marked >= 0) await load();
});
document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshCount(); });
setInterval(refreshCount, POLL_MS);
refreshCount();

// Preferences: language of emails and of this list, email on/off, and per kind.
const prefsBox = document.getElementById("notif-prefs");
const prefsForm = document.getElementById("notif-prefs-form");
const kindsBox = document.getElementById("notif-kinds");
const prefsStatus = document.getElementById("notif-prefs-status");

async function loadPrefs() {
  try {
    const prefs = await api("/api/v1/me/notification-preferences");
    prefsForm.elements.language.value = prefs.language;
    prefsForm.elements.email_enabled.checked = prefs.email_enabled;
    kindsBox.replaceChildren(kindsBox.querySelector("legend"), ...prefs.kinds.map((kind) =>
      el("label", { class: "check" },
        el("input", { type: "checkbox", name: "kind", value: kind, checked: !prefs.email_off_kinds.includes(kind) }),
        ` ${t(`notif.kind.${kind}`)}`)));
  } catch (error) {
    prefsStatus.textContent = t("common.error", { detail: error.message });
  }
}

prefsBox.addEventListener("toggle", () => { if (prefsBox.open) loadPrefs(); });
prefsForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const boxes = [...prefsForm.querySelectorAll("input[name=kind]")];
  try {
    await api("/api/v1/me/notification-preferences", {
      method: "PUT",
      body: {
        language: prefsForm.elements.language.value,
        email_enabled: prefsForm.elements.email_enabled.checked,
        email_off_kinds: boxes.filter((b) => !b.checked).map((b) => b.value),
      },
    });
    prefsStatus.textContent = t("notif.prefs.saved");
  } catch (error) {
    prefsStatus.textContent = t("common.error", { detail: error.message });
  }
});
