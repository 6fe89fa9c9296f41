// Door access (UI over cloud/api/access_rights.py): doors, access groups, their grants with
// weekly schedules, and holidays. Every change is a new version of the rights and reaches the
// nodes' signed snapshots within seconds.
import { api, el, page, t } from "../common.js";
import { act, field, table } from "../admin.js";

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const RULES = ["agency", "zone", "floor", "role", "people"];

function input(testid, attrs = {}) {
  return el("input", { type: "text", autocomplete: "off", spellcheck: false, "data-testid": testid, ...attrs });
}

function removeButton(label, path, reload) {
  return el("button", { type: "button", "data-action": "delete", onclick: async () => {
    if (await act(() => api(path, { method: "DELETE" }), t("admin.access.deleted"))) await reload();
  } }, label);
}

export async function render(root) {
  const sites = page.user.sites.length ? page.user.sites : [];
  const doorsBox = el("div"), groupsBox = el("div"), grantsBox = el("div"), holidaysBox = el("div");
  let doors = [], groups = [];

  // --- doors
  const doorId = input("door-id", { required: true }), doorName = input("door-name", { required: true });
  const doorSite = input("door-site", { required: true, value: sites[0] || "" });
  const doorForm = el("form", { class: "inline-form", "data-testid": "door-form" },
    field(t("admin.access.id"), doorId), field(t("admin.access.name"), doorName),
    field(t("admin.access.site"), doorSite), el("button", { type: "submit" }, t("admin.access.save_door")));
  doorForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (await act(() => api(`/api/v1/access/doors/${encodeURIComponent(doorId.value.trim())}`, {
      method: "PUT", body: { site_id: doorSite.value.trim(), name: doorName.value.trim() } }),
    t("admin.access.door_saved"))) await load();
  });

  // --- groups
  const groupId = input("group-id", { required: true }), groupName = input("group-name", { required: true });
  const groupSite = input("group-site", { required: true, value: sites[0] || "" });
  const rule = el("select", { "data-testid": "group-rule" }, RULES.map((r) => el("option", { value: r }, t(`admin.access.rule.${r}`))));
  const value = input("group-value");
  const members = input("group-members", { placeholder: "p-1, p-2" });
  const groupForm = el("form", { class: "inline-form", "data-testid": "group-form" },
    field(t("admin.access.id"), groupId), field(t("admin.access.name"), groupName),
    field(t("admin.access.site"), groupSite), field(t("admin.access.rule"), rule),
    field(t("admin.access.value"), value), field(t("admin.access.members"), members),
    el("button", { type: "submit" }, t("admin.access.save_group")));
  groupForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const people = rule.value === "people";
    const body = { site_id: groupSite.value.trim(), name: groupName.value.trim(), rule: rule.value,
      value: people ? null : value.value.trim(),
      members: people ? members.value.split(",").map((m) => m.trim()).filter(Boolean) : [] };
    if (await act(() => api(`/api/v1/access/groups/${encodeURIComponent(groupId.value.trim())}`,
      { method: "PUT", body }), t("admin.access.group_saved"))) await load();
  });

  // --- grants with a weekly schedule
  const grantGroup = el("select", { "data-testid": "grant-group" });
  const grantDoor = el("select", { "data-testid": "grant-door" });
  const dayBoxes = DAYS.map((d) => el("label", { class: "day" },
    el("input", { type: "checkbox", value: d, checked: !["sat", "sun"].includes(d), "data-day": d }), t(`admin.day.${d}`)));
  const start = el("input", { type: "time", value: "07:00", "data-testid": "grant-start" });
  const end = el("input", { type: "time", value: "19:00", "data-testid": "grant-end" });
  const holidays = el("input", { type: "checkbox", "data-testid": "grant-holidays" });
  const grantForm = el("form", { class: "inline-form", "data-testid": "grant-form" },
    field(t("admin.access.group"), grantGroup), field(t("admin.access.door"), grantDoor),
    el("fieldset", { class: "days" }, el("legend", {}, t("admin.access.days")), dayBoxes),
    field(t("admin.access.start"), start), field(t("admin.access.end"), end),
    field(t("admin.access.open_on_holidays"), holidays),
    el("button", { type: "submit" }, t("admin.access.grant")));
  grantForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const days = dayBoxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    const body = { group_id: grantGroup.value, door_id: grantDoor.value, open_on_holidays: holidays.checked,
      schedule: [{ days, start: start.value, end: end.value === "00:00" ? "24:00" : end.value }] };
    if (await act(() => api("/api/v1/access/grants", { method: "PUT", body }), t("admin.access.granted"))) await load();
  });

  // --- holidays of a site
  const holidaySite = input("holiday-site", { value: sites[0] || "" });
  const holidayDay = el("input", { type: "date", "data-testid": "holiday-day", required: true });
  const holidayName = input("holiday-name", { required: true });
  const holidayForm = el("form", { class: "inline-form", "data-testid": "holiday-form" },
    field(t("admin.access.site"), holidaySite), field(t("admin.access.day"), holidayDay),
    field(t("admin.access.name"), holidayName), el("button", { type: "submit" }, t("admin.access.add_holiday")));
  holidayForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (await act(() => api("/api/v1/access/holidays", { method: "PUT", body: {
      site_id: holidaySite.value.trim(), day: holidayDay.value, name: holidayName.value.trim() } }),
    t("admin.access.holiday_saved"))) await loadHolidays();
  });
  holidaySite.addEventListener("change", loadHolidays);

  async function loadHolidays() {
    const site = holidaySite.value.trim();
    const list = site ? await api("/api/v1/access/holidays", { query: { site_id: site } }).catch(() => []) : [];
    holidaysBox.replaceChildren(table(t("admin.access.holidays", { count: list.length }),
      [t("admin.access.day"), t("admin.access.name"), ""],
      list.map((h) => ({ cells: [h.day, h.name,
        removeButton(t("admin.access.delete"), `/api/v1/access/holidays/${encodeURIComponent(h.site_id)}/${h.day}`, loadHolidays)] })),
      "holiday-table"));
  }

  async function load() {
    [doors, groups] = await Promise.all([api("/api/v1/access/doors"), api("/api/v1/access/groups")]);
    const grants = await api("/api/v1/access/grants");
    doorsBox.replaceChildren(table(t("admin.access.doors", { count: doors.length }),
      [t("admin.access.id"), t("admin.access.name"), t("admin.access.site"), t("admin.access.nodes"), ""],
      doors.map((d) => ({ dataset: { door: d.id }, cells: [d.id, d.name, d.site_id, d.nodes.join(", ") || "—",
        removeButton(t("admin.access.delete"), `/api/v1/access/doors/${encodeURIComponent(d.id)}`, load)] })),
      "door-table"));
    groupsBox.replaceChildren(table(t("admin.access.groups", { count: groups.length }),
      [t("admin.access.id"), t("admin.access.name"), t("admin.access.site"), t("admin.access.rule"), t("admin.access.value"), ""],
      groups.map((g) => ({ dataset: { group: g.id }, cells: [g.id, g.name, g.site_id, t(`admin.access.rule.${g.rule}`),
        g.rule === "people" ? t("admin.access.member_count", { count: g.members.length }) : g.value,
        removeButton(t("admin.access.delete"), `/api/v1/access/groups/${encodeURIComponent(g.id)}`, load)] })),
      "group-table"));
    grantsBox.replaceChildren(table(t("admin.access.grants", { count: grants.length }),
      [t("admin.access.group"), t("admin.access.door"), t("admin.access.schedule"), t("admin.access.open_on_holidays"), ""],
      grants.map((g) => ({ dataset: { grant: String(g.id), group: g.group_id, door: g.door_id }, cells: [g.group_id, g.door_id,
        g.schedule.map((w) => `${w.days.map((d) => t(`admin.day.${d}`)).join(" ")} ${w.start}–${w.end}`).join("; "),
        t(g.open_on_holidays ? "admin.yes" : "admin.no"),
        removeButton(t("admin.access.revoke"), `/api/v1/access/grants/${g.id}`, load)] })),
      "grant-table"));
    grantGroup.replaceChildren(...groups.map((g) => el("option", { value: g.id }, `${g.name} (${g.id})`)));
    grantDoor.replaceChildren(...doors.map((d) => el("option", { value: d.id }, `${d.name} (${d.id})`)));
  }

  root.replaceChildren(
    el("section", { class: "card" }, el("h3", {}, t("admin.access.doors_title")), doorForm, doorsBox),
    el("section", { class: "card" }, el("h3", {}, t("admin.access.groups_title")), groupForm, groupsBox),
    el("section", { class: "card" }, el("h3", {}, t("admin.access.grants_title")), grantForm, grantsBox),
    el("section", { class: "card" }, el("h3", {}, t("admin.access.holidays_title")), holidayForm, holidaysBox));
  await load();
  await loadHolidays();
}
