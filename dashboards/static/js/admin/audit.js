// The audit log of admin actions: filter by actor, action, target and time, page back in time.
import { api, el, fmtDateTime, t } from "../common.js";
import { field, table } from "../admin.js";

export async function render(root) {
  const actor = el("input", { type: "text", "data-testid": "audit-actor", autocomplete: "off" });
  const action = el("input", { type: "text", "data-testid": "audit-action", autocomplete: "off", placeholder: "badge" });
  const target = el("input", { type: "text", "data-testid": "audit-target", autocomplete: "off", placeholder: "badge:" });
  const since = el("input", { type: "datetime-local", "data-testid": "audit-since" });
  const until = el("input", { type: "datetime-local", "data-testid": "audit-until" });
  const list = el("div", { "data-testid": "audit-list" });
  const more = el("button", { type: "button", hidden: true, "data-testid": "audit-more" }, t("admin.audit.more"));
  let rows = [], next = null;

  const form = el("form", { class: "inline-form", "data-testid": "audit-form" },
    field(t("admin.audit.actor"), actor), field(t("admin.audit.action"), action),
    field(t("admin.audit.target"), target), field(t("admin.audit.since"), since),
    field(t("admin.audit.until"), until), el("button", { type: "submit" }, t("admin.audit.search")));

  const iso = (local) => (local ? new Date(local).toISOString() : undefined);
  async function fetchPage(before) {
    const result = await api("/api/v1/audit", { query: { actor: actor.value.trim(), action: action.value.trim(),
      target: target.value.trim(), since: iso(since.value), until: iso(until.value), before, limit: 50 } });
    rows = before ? rows.concat(result.items) : result.items;
    next = result.next_before;
    more.hidden = next === null;
    list.replaceChildren(table(t("admin.audit.list", { count: rows.length }),
      [t("admin.audit.when"), t("admin.audit.actor"), t("admin.audit.roles"), t("admin.audit.action"),
        t("admin.audit.target"), t("admin.audit.detail")],
      rows.map((r) => ({ dataset: { action: r.action, target: r.target }, cells: [fmtDateTime(r.at), r.actor,
        r.actor_roles.map((x) => t(`role.${x}`)).join(", "), el("code", {}, r.action), el("code", {}, r.target),
        el("code", { class: "detail" }, JSON.stringify(r.detail))] })), "audit-table"));
  }
  form.addEventListener("submit", (e) => { e.preventDefault(); fetchPage(); });
  more.addEventListener("click", () => fetchPage(next));

  root.replaceChildren(el("section", { class: "card" }, form, list, more));
  await fetchPage();
}
