// Edge enrolment tokens: create one (shown once), list them, withdraw an unused one.
import { api, el, fmtDateTime, t } from "../common.js";
import { act, field, table } from "../admin.js";

export async function render(root) {
  const node = el("input", { type: "text", "data-testid": "token-node", autocomplete: "off",
    placeholder: t("admin.enrolment.node_hint"), pattern: "[A-Za-z0-9][A-Za-z0-9_.-]*" });
  const hours = el("input", { type: "number", min: 1, max: 720, value: 24, "data-testid": "token-hours" });
  const shown = el("div", { "data-testid": "token-shown", "aria-live": "polite" });
  const list = el("div", { "data-testid": "token-list" });

  const form = el("form", { class: "inline-form", "data-testid": "token-form" },
    field(t("admin.enrolment.node"), node), field(t("admin.enrolment.hours"), hours),
    el("button", { type: "submit" }, t("admin.enrolment.create")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { ttl_s: Number(hours.value) * 3600 };
    if (node.value.trim()) body.node_id = node.value.trim();
    const issued = await act(() => api("/api/v1/enrolment-tokens", { method: "POST", body }),
      t("admin.enrolment.created"));
    if (!issued) return;
    shown.replaceChildren(el("div", { class: "once" },
      el("p", {}, t("admin.enrolment.once", { node: issued.node_id, until: fmtDateTime(issued.expires_at) })),
      el("code", { class: "token", "data-testid": "token-value" }, issued.token),
      el("p", { class: "muted small" }, t("admin.enrolment.command")),
      el("code", {}, `ruang edge enroll --token ${issued.token}`)));
    await load();
  });

  async function load() {
    const tokens = await api("/api/v1/enrolment-tokens");
    list.replaceChildren(table(t("admin.enrolment.list", { count: tokens.length }),
      [t("admin.enrolment.node"), t("admin.enrolment.state"), t("admin.enrolment.created_at"),
        t("admin.enrolment.expires_at"), t("admin.enrolment.ref"), ""],
      tokens.map((k) => ({
        dataset: { ref: k.ref, node: k.node_id, state: k.state },
        cells: [k.node_id, t(`admin.enrolment.state.${k.state}`), fmtDateTime(k.created_at),
          fmtDateTime(k.expires_at), el("code", {}, k.ref),
          k.state === "open"
            ? el("button", { type: "button", "data-action": "withdraw", onclick: async () => {
              if (await act(() => api(`/api/v1/enrolment-tokens/${k.ref}`, { method: "DELETE" }),
                t("admin.enrolment.withdrawn")) !== null) await load();
            } }, t("admin.enrolment.withdraw"))
            : ""],
      })), "token-table"));
  }

  root.replaceChildren(
    el("section", { class: "card" }, el("h3", {}, t("admin.enrolment.create_title")), form, shown),
    el("section", { class: "card" }, el("h3", {}, t("admin.enrolment.list_title")), list));
  await load();
}
