// Webhooks: subscribe an endpoint (the generated secret is shown once), deactivate one, and
// read each subscription's delivery log (attempts, last status, given up or delivered).
import { api, el, fmtDateTime, t } from "../common.js";
import { act, field, table } from "../admin.js";

export async function render(root) {
  const url = el("input", { type: "url", required: true, "data-testid": "hook-url", placeholder: "https://" });
  const kinds = el("input", { type: "text", "data-testid": "hook-kinds", placeholder: t("admin.webhooks.kinds_hint") });
  const shown = el("div", { "data-testid": "hook-secret", "aria-live": "polite" });
  const list = el("div", { "data-testid": "hook-list" });
  const log = el("div", { "data-testid": "delivery-log" });

  const form = el("form", { class: "inline-form", "data-testid": "hook-form" },
    field(t("admin.webhooks.url"), url), field(t("admin.webhooks.kinds"), kinds),
    el("button", { type: "submit" }, t("admin.webhooks.subscribe")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const wanted = kinds.value.split(",").map((k) => k.trim()).filter(Boolean);
    const body = { url: url.value.trim(), ...(wanted.length ? { kinds: wanted } : {}) };
    const made = await act(() => api("/api/v1/webhooks", { method: "POST", body }), t("admin.webhooks.subscribed"));
    if (!made) return;
    shown.replaceChildren(el("p", {}, t("admin.webhooks.secret_once")), el("code", { class: "token" }, made.secret));
    await load();
  });

  async function deliveries(hook) {
    const rows = await api(`/api/v1/webhooks/${hook.id}/deliveries`, { query: { limit: 100 } });
    log.replaceChildren(table(t("admin.webhooks.log", { id: hook.id, count: rows.length }),
      [t("admin.webhooks.event"), t("admin.webhooks.kind"), t("admin.webhooks.attempts"),
        t("admin.webhooks.last_status"), t("admin.webhooks.state"), t("admin.webhooks.when")],
      rows.map((d) => ({ dataset: { delivery: String(d.id) }, cells: [String(d.event_id), d.kind, String(d.attempts),
        d.last_status != null ? String(d.last_status) : (d.last_error || "—"),
        t(d.delivered_at ? "admin.webhooks.delivered" : d.gave_up ? "admin.webhooks.gave_up" : "admin.webhooks.retrying"),
        fmtDateTime(d.delivered_at || d.next_attempt_at)] })), "delivery-table"));
  }

  async function load() {
    const hooks = await api("/api/v1/webhooks");
    list.replaceChildren(table(t("admin.webhooks.list", { count: hooks.length }),
      [t("admin.webhooks.url"), t("admin.webhooks.kinds"), t("admin.webhooks.state"), t("admin.webhooks.created"), ""],
      hooks.map((h) => ({ dataset: { hook: String(h.id) }, cells: [h.url, h.kinds.join(", ") || t("admin.webhooks.all"),
        t(h.active ? "admin.webhooks.active" : "admin.webhooks.inactive"), fmtDateTime(h.created_at),
        el("div", { class: "actions" },
          el("button", { type: "button", "data-action": "log", onclick: () => deliveries(h) }, t("admin.webhooks.show_log")),
          h.active ? el("button", { type: "button", "data-action": "deactivate", onclick: async () => {
            if (await act(() => api(`/api/v1/webhooks/${h.id}`, { method: "DELETE" }), t("admin.webhooks.deactivated"))) await load();
          } }, t("admin.webhooks.deactivate")) : "")] })), "hook-table"));
  }

  root.replaceChildren(
    el("section", { class: "card" }, el("h3", {}, t("admin.webhooks.create_title")), form, shown),
    el("section", { class: "card" }, el("h3", {}, t("admin.webhooks.list_title")), list, log));
  await load();
}
