// Node configuration: edit the desired config as JSON or YAML, check it (problems with their
// lines), push it, and watch the node report the version it applied (config_status).
import { api, el, fmtDateTime, page, t } from "../common.js";
import { act, field, status } from "../admin.js";

const POLL_MS = 2000;

export async function render(root) {
  const nodes = await api("/api/v1/fleet/nodes");
  const picker = el("select", { "data-testid": "config-node" },
    nodes.map((n) => el("option", { value: n.node_id ?? n.id }, n.node_id ?? n.id)));
  if (page.node) picker.value = page.node;
  const format = el("select", { "data-testid": "config-format" },
    el("option", { value: "json" }, "JSON"), el("option", { value: "yaml" }, "YAML"));
  const editor = el("textarea", { rows: 14, spellcheck: false, class: "code", "data-testid": "config-text" });
  const problems = el("div", { "data-testid": "config-problems", "aria-live": "polite" });
  const state = el("dl", { class: "facts", "data-testid": "config-state" });
  const check = el("button", { type: "button", "data-testid": "config-check" }, t("admin.nodes.check"));
  const push = el("button", { type: "button", "data-testid": "config-push" }, t("admin.nodes.push"));
  let timer = null;

  function fact(label, value, testid) {
    return [el("dt", {}, label), el("dd", { "data-testid": testid }, value)];
  }

  async function view() {
    if (!picker.value) return null;
    const v = await api(`/api/v1/nodes/${encodeURIComponent(picker.value)}/config`);
    const r = v.reported;
    state.replaceChildren(
      ...fact(t("admin.nodes.desired"), v.desired ? String(v.desired.version) : "—", "desired-version"),
      ...fact(t("admin.nodes.applied"), r?.active_version != null ? String(r.active_version) : "—", "applied-version"),
      ...fact(t("admin.nodes.last_report"), r ? t(r.applied ? "admin.nodes.report_applied" : "admin.nodes.report_refused",
        { version: r.version, error: r.error || "" }) : t("admin.nodes.no_report"), "last-report"),
      ...fact(t("admin.nodes.reported_at"), r ? fmtDateTime(r.received_at) : "—", "reported-at"),
      ...fact(t("admin.nodes.sync"), t(v.in_sync ? "admin.nodes.in_sync" : "admin.nodes.pending"), "in-sync"));
    state.dataset.inSync = v.in_sync ? "1" : "0";
    return v;
  }

  // Counts the technician's edits: a load that answers after they started typing must not
  // overwrite their text with the stored config.
  let edits = 0;
  editor.addEventListener("input", () => { edits += 1; });

  async function load() {
    clearInterval(timer);
    problems.replaceChildren();
    const before = edits;
    const v = await view();
    const config = v?.desired?.config ?? {};
    if (edits === before) {
      editor.value = format.value === "json" ? JSON.stringify(config, null, 2) : toYaml(config);
    }
    timer = setInterval(view, POLL_MS);  // the node answers config_status on its own time
  }

  async function checked() {
    const result = await act(() => api(`/api/v1/nodes/${encodeURIComponent(picker.value)}/config/check`,
      { method: "POST", body: { text: editor.value, format: format.value } }), t("admin.nodes.checked"));
    if (!result) return null;
    if (result.ok) {
      problems.replaceChildren(el("p", { class: "ok", "data-testid": "config-ok" }, t("admin.nodes.valid")));
      return result.config;
    }
    problems.replaceChildren(el("ul", { class: "problems" }, result.errors.map((e) =>
      el("li", { "data-line": e.line ?? "" }, e.line ? t("admin.nodes.at_line", { line: e.line, message: e.message }) : e.message))));
    status(t("admin.nodes.invalid", { count: result.errors.length }), "error");
    return null;
  }

  check.addEventListener("click", checked);
  push.addEventListener("click", async () => {
    const config = await checked();
    if (!config) return;
    const done = await act(() => api(`/api/v1/nodes/${encodeURIComponent(picker.value)}/config`,
      { method: "PUT", body: { config } }), t("admin.nodes.pushed"));
    if (done) await view();
  });
  picker.addEventListener("change", load);
  format.addEventListener("change", load);

  root.replaceChildren(
    el("section", { class: "card" },
      el("div", { class: "inline-form" }, field(t("admin.nodes.node"), picker), field(t("admin.nodes.format"), format)),
      field(t("admin.nodes.editor"), editor),
      el("div", { class: "actions" }, check, push), problems),
    el("section", { class: "card" }, el("h3", {}, t("admin.nodes.state_title")), state));
  if (!nodes.length) status(t("admin.nodes.none"), "error");
  else await load();
}

/** A small YAML writer for the config's shapes (maps, lists, scalars): the server parses it back. */
function toYaml(value, indent = "") {
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    return value.map((v) => {
      const inner = toYaml(v, indent + "  ");
      return typeof v === "object" && v !== null && !(Array.isArray(v) && !v.length) && Object.keys(v).length
        ? `${indent}- ${inner.trimStart()}` : `${indent}- ${inner}`;
    }).join("\n");
  }
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (!keys.length) return "{}";
    return keys.map((k) => {
      const v = value[k];
      const nested = v && typeof v === "object" && Object.keys(v).length;
      return nested ? `${indent}${k}:\n${toYaml(v, indent + "  ")}` : `${indent}${k}: ${toYaml(v, indent + "  ")}`;
    }).join("\n");
  }
  return JSON.stringify(value);  // JSON scalars are valid YAML scalars
}
