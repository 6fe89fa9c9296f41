// People and guests: CSV import with a preview of every bad row before anything is saved,
// then the import itself; the list with search.
import { api, el, t } from "../common.js";
import { act, field, postText, status, table } from "../admin.js";

export async function render(root) {
  const file = el("input", { type: "file", accept: ".csv,text/csv", "data-testid": "csv-file" });
  const text = el("textarea", { rows: 6, spellcheck: false, "data-testid": "csv-text",
    placeholder: "id,kind,name,role,agency,site_id" });
  const preview = el("div", { "data-testid": "preview" });
  const commit = el("button", { type: "button", disabled: true, "data-testid": "import" }, t("admin.people.import"));
  const check = el("button", { type: "button", "data-testid": "preview-button" }, t("admin.people.preview"));
  const search = el("input", { type: "search", "data-testid": "people-search", autocomplete: "off" });
  const list = el("div", { "data-testid": "people-list" });

  file.addEventListener("change", async () => {
    if (file.files[0]) text.value = await file.files[0].text();
    commit.disabled = true;
  });
  text.addEventListener("input", () => { commit.disabled = true; });

  check.addEventListener("click", async () => {
    const result = await act(() => postText("/api/v1/people/import/preview", text.value, "text/csv"),
      t("admin.people.previewed"));
    if (!result) return;
    if (result.ok) {
      preview.replaceChildren(el("p", { class: "ok", "data-testid": "preview-ok" },
        t("admin.people.would", result)));
      commit.disabled = false;
    } else {
      preview.replaceChildren(table(t("admin.people.errors", { count: result.errors.length }),
        [t("admin.people.line"), t("admin.people.reason")],
        result.errors.map((e) => ({ cells: [String(e.line), e.reason] })), "preview-errors"));
      commit.disabled = true;
      status(t("admin.people.fix_first"), "error");
    }
  });

  commit.addEventListener("click", async () => {
    const result = await act(() => postText("/api/v1/people/import", text.value, "text/csv"),
      t("admin.people.imported"));
    if (result) {
      preview.replaceChildren(el("p", { class: "ok", "data-testid": "import-done" }, t("admin.people.done", result)));
      commit.disabled = true;
      await load();
    }
  });

  let timer = null;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 250); });

  async function load() {
    const people = await api("/api/v1/people", { query: { q: search.value.trim() } });
    list.replaceChildren(table(t("admin.people.list", { count: people.length }),
      [t("admin.people.id"), t("admin.people.name"), t("admin.people.kind"), t("admin.people.role"),
        t("admin.people.agency"), t("admin.people.site"), t("admin.people.valid")],
      people.map((p) => ({
        dataset: { person: p.id },
        cells: [p.id, p.name, t(`admin.kind.${p.kind}`), t(`role.${p.role}`), p.agency || "—",
          p.site_id || "—", p.kind === "guest" ? `${p.valid_from || "…"} – ${p.valid_until || "…"}` : "—"],
      })), "people-table"));
  }

  root.replaceChildren(
    el("section", { class: "card" }, el("h3", {}, t("admin.people.import_title")),
      el("p", { class: "muted small" }, t("admin.people.columns")),
      field(t("admin.people.file"), file), field(t("admin.people.text"), text),
      el("div", { class: "actions" }, check, commit), preview),
    el("section", { class: "card" }, el("h3", {}, t("admin.people.list_title")),
      field(t("admin.people.search"), search), list));
  await load();
}
