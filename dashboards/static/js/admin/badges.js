// Badges: issue, revoke, report lost, replace. Each change republishes the signed snapshots,
// so the nodes' allow-lists follow within seconds.
import { api, el, fmtDateTime, t } from "../common.js";
import { act, field, table } from "../admin.js";

const KINDS = ["nfc", "ble"];

export async function render(root) {
  const person = el("input", { type: "text", required: true, "data-testid": "badge-person", autocomplete: "off" });
  const kind = el("select", { "data-testid": "badge-kind" }, KINDS.map((k) => el("option", { value: k }, k.toUpperCase())));
  const uid = el("input", { type: "text", required: true, "data-testid": "badge-uid", autocomplete: "off", spellcheck: false });
  const filter = el("input", { type: "search", "data-testid": "badge-filter", autocomplete: "off" });
  const list = el("div", { "data-testid": "badge-list" });
  let badges = [];

  const issue = el("form", { class: "inline-form", "data-testid": "issue-form" },
    field(t("admin.badges.person"), person), field(t("admin.badges.kind"), kind),
    field(t("admin.badges.uid"), uid),
    el("button", { type: "submit" }, t("admin.badges.issue")));
  issue.addEventListener("submit", async (event) => {
    event.preventDefault();
    const done = await act(() => api("/api/v1/badges", { method: "POST",
      body: { person_id: person.value.trim(), kind: kind.value, uid: uid.value.trim() } }),
    t("admin.badges.issued"));
    if (done) { uid.value = ""; await load(); }
  });

  function replaceForm(badge) {
    const newUid = el("input", { type: "text", required: true, "data-testid": "replace-uid", spellcheck: false });
    const newKind = el("select", {}, KINDS.map((k) => el("option", { value: k, selected: k === badge.kind }, k.toUpperCase())));
    const form = el("form", { class: "inline-form", "data-testid": "replace-form" },
      field(t("admin.badges.new_uid"), newUid), field(t("admin.badges.kind"), newKind),
      el("button", { type: "submit" }, t("admin.badges.replace")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const done = await act(() => api(`/api/v1/badges/${badge.id}/replace`, { method: "POST",
        body: { kind: newKind.value, uid: newUid.value.trim() } }), t("admin.badges.replaced"));
      if (done) await load();
    });
    return form;
  }

  function actions(badge) {
    if (badge.status !== "active") return el("span", { class: "muted" }, "—");
    const end = (what) => async () => {
      const done = await act(() => api(`/api/v1/badges/${badge.id}/${what}`, { method: "POST" }),
        t(`admin.badges.${what}_done`));
      if (done) await load();
    };
    const cell = el("div", { class: "actions" });
    cell.append(
      el("button", { type: "button", "data-action": "revoke", onclick: end("revoke") }, t("admin.badges.revoke")),
      el("button", { type: "button", "data-action": "lost", onclick: end("lost") }, t("admin.badges.lost")),
      el("button", { type: "button", "data-action": "replace",
        onclick: () => cell.replaceChildren(replaceForm(badge)) }, t("admin.badges.replace")));
    return cell;
  }

  function draw() {
    const q = filter.value.trim().toLowerCase();
    const shown = badges.filter((b) => !q || b.person_id.toLowerCase().includes(q) || b.uid.toLowerCase().includes(q));
    list.replaceChildren(table(t("admin.badges.list", { count: shown.length }),
      [t("admin.badges.person"), t("admin.badges.kind"), t("admin.badges.uid"), t("admin.badges.status"),
        t("admin.badges.issued_at"), t("admin.badges.actions")],
      shown.map((b) => ({
        dataset: { badge: String(b.id), uid: b.uid, status: b.status },
        cells: [b.person_id, b.kind.toUpperCase(), el("code", {}, b.uid),
          el("span", { class: `pill badge-${b.status}` }, t(`admin.badges.state.${b.status}`)),
          fmtDateTime(b.issued_at), actions(b)],
      })), "badge-table"));
  }

  async function load() {
    badges = (await api("/api/v1/badges")).sort((a, b) => b.id - a.id);
    draw();
  }
  filter.addEventListener("input", draw);

  root.replaceChildren(
    el("section", { class: "card" }, el("h3", {}, t("admin.badges.issue_title")), issue,
      el("p", { class: "muted small" }, t("admin.badges.reach"))),
    el("section", { class: "card" }, el("h3", {}, t("admin.badges.list_title")),
      field(t("admin.badges.filter"), filter), list));
  await load();
}
