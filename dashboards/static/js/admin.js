// Admin console (/admin/<section>): loads the section's module; each one drives the cloud API
// with the session cookie (the API checks roles, sites and audits every change).
import { ApiError, announce, el, page, showError, t } from "./common.js";

const SECTIONS = {
  people: "./admin/people.js",
  badges: "./admin/badges.js",
  access: "./admin/access.js",
  enrolment: "./admin/enrolment.js",
  nodes: "./admin/nodes.js",
  webhooks: "./admin/webhooks.js",
  audit: "./admin/audit.js",
};

const root = document.getElementById("admin-root");
const statusLine = document.getElementById("admin-status");

/** Says what happened (or went wrong) in the status line and to screen readers. */
export function status(message, kind = "ok") {
  statusLine.textContent = message;
  statusLine.dataset.kind = kind;
  announce(message);
}

/** The message of an API error, with the problem's per-row errors when it has them. */
export function problemText(error) {
  if (!(error instanceof ApiError)) return String(error.message || error);
  const detail = error.problem?.detail || error.problem?.title || error.message;
  const rows = (error.problem?.errors || []).map((e) => `${e.line ?? ""} ${e.reason ?? e.msg ?? ""}`.trim());
  return rows.length ? `${detail}: ${rows.join("; ")}` : detail;
}

/** Runs a change; the status line says done or why not. The result (true for none), or null. */
export async function act(fn, doneMessage) {
  try {
    const result = await fn();
    status(doneMessage, "ok");
    return result ?? true;  // a 204 has no body but did succeed
  } catch (error) {
    status(t("admin.failed", { detail: problemText(error) }), "error");
    return null;
  }
}

/** A table with a caption; `rows` are arrays of cells (nodes or text). */
export function table(caption, header, rows, testid) {
  return el("table", { class: "admin-table", "data-testid": testid },
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, header.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.length
      ? rows.map((r) => el("tr", { dataset: r.dataset || {} }, r.cells.map((c) => el("td", {}, c))))
      : [el("tr", {}, el("td", { colSpan: header.length, class: "muted" }, t("common.none")))]));
}

/** A labelled form field. */
export function field(label, input) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return el("div", { class: "field" }, el("label", { for: id }, label), input);
}

/** POSTs text (CSV) with the session cookie; JSON back, problem+json -> ApiError. */
export async function postText(path, text, contentType) {
  const response = await fetch(path, {
    method: "POST", credentials: "same-origin", body: text,
    headers: { "Content-Type": contentType, Accept: "application/json", [page.csrfHeader]: "1" },
  });
  let body = null;
  try { body = await response.json(); } catch { /* no JSON */ }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

async function start() {
  const path = SECTIONS[page.section];
  try {
    const module = await import(path);
    await module.render(root);
    root.dataset.ready = "1";
  } catch (error) {
    showError(root, error, start);
  }
}

start();
