// Technician fleet view (/fleet): one row per edge node with its state and the reasons.
// Also exports the small renderers the node page (node.js) shares, so a state looks
// the same on both pages; the fleet table itself only starts on the fleet page.
import { ApiError, announce, api, el, fmtDateTime, fmtNumber, lang, page, t } from "./common.js";

export const REFRESH_MS = 10_000;
const SEVERITY = { ok: 0, warning: 1, alarm: 2, offline: 3 };
const locale = lang === "id" ? "id-ID" : "en-GB";
const relative = new Intl.RelativeTimeFormat(locale, { numeric: "always", style: "long" });

/** "2 menit lalu" style text for an ISO time, against the browser's clock. */
export function relTime(iso) {
  if (!iso) return t("fleet.never");
  const seconds = (Date.parse(iso) - Date.now()) / 1000;
  const abs = Math.abs(seconds);
  // Edge and cloud clocks differ by a little: a few seconds either way is "just now".
  if (abs < 10) return t("fleet.just_now");
  const units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
  for (const [unit, size] of units) {
    if (abs >= size || unit === "second") return relative.format(Math.round(seconds / size), unit);
  }
  return "";
}

/** A <time> with the relative text and the exact time as tooltip (and for screen readers on focus). */
export function timeAgo(iso) {
  if (!iso) return el("span", { class: "muted" }, t("fleet.never"));
  return el("time", { datetime: iso, title: fmtDateTime(iso) }, relTime(iso));
}

/** State as a pill with an icon-like glyph, a text label and a colour: never colour alone. */
export function statePill(state) {
  const glyph = { ok: "✓", warning: "!", alarm: "✕", offline: "○" }[state] || "?";
  return el("span", { class: `pill state-pill ${state}`, dataset: { state }, "data-testid": "state" },
    el("span", { "aria-hidden": "true", class: "glyph" }, glyph), " ", t(`fleet.state.${state}`));
}

/** One reason: its localized label, and the server's detail (English, as the edge wrote it). */
export function reasonItem(reason, tag = "li") {
  return el(tag, { class: `reason ${reason.level}`, dataset: { code: reason.code } },
    el("strong", {}, t(`fleet.reason.${reason.code}`)), ": ",
    el("span", { lang: "en" }, reason.detail));
}

export function onlineText(online) {
  return el("span", { class: online ? "conn online" : "conn offline" },
    el("span", { "aria-hidden": "true" }, online ? "● " : "○ "),
    t(online ? "fleet.online" : "fleet.offline"));
}

export function fmtOffset(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  // Judge the sign on the shown (rounded) value: no "−0,0 s".
  const sign = seconds >= 0.05 ? "+" : seconds <= -0.05 ? "−" : "±";
  return `${sign}${fmtNumber(Math.abs(seconds), 1)} s`;
}

export function fmtBytes(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  if (bytes >= 1e9) return `${fmtNumber(bytes / 1e9, 1)} GB`;
  if (bytes >= 1e6) return `${fmtNumber(bytes / 1e6, 0)} MB`;
  return `${fmtNumber(bytes / 1e3, 0)} kB`;
}

/** Reported config version, and what the cloud wants when that differs. */
export function configText(node) {
  const reported = node.config_version ?? t("fleet.config_file");
  if (node.desired_config_version != null && node.desired_config_version !== node.config_version) {
    return t("fleet.config_desired", { reported, desired: node.desired_config_version });
  }
  return String(reported);
}

/** Desk units and other devices together: "online/total", with the split as a tooltip. */
export function devicesCell(node) {
  const d = node.device_counts, u = node.desk_unit_counts;
  const online = d.online + u.online, total = d.total + u.total;
  const detail = t("fleet.devices_detail", {
    units_online: u.online, units: u.total, devices_online: d.online, devices: d.total });
  return el("span", { title: detail, "data-testid": "devices" },
    `${online}/${total}`, el("span", { class: "visually-hidden" }, ` (${detail})`));
}

// --- the fleet table -----------------------------------------------------------------------

const COLUMNS = [
  // key, label, sort value (undefined: not sortable)
  ["node", "fleet.col.node", (n) => n.id],
  ["state", "fleet.col.state", (n) => SEVERITY[n.state] ?? 9],
  ["online", "fleet.col.online", (n) => (n.online ? 1 : 0)],
  ["last_seen", "fleet.col.last_seen", (n) => (n.last_seen ? Date.parse(n.last_seen) : 0)],
  ["software", "fleet.col.software", (n) => n.sw_version || ""],
  ["config", "fleet.col.config", (n) => n.config_version ?? -1],
  ["outbox", "fleet.col.outbox", (n) => n.outbox_depth ?? -1],
  ["clock", "fleet.col.clock", (n) => Math.abs(n.clock_offset_s ?? 0)],
  ["devices", "fleet.col.devices", (n) => {
    const total = n.device_counts.total + n.desk_unit_counts.total;
    return total ? (n.device_counts.online + n.desk_unit_counts.online) / total : 2;
  }],
  ["alarms", "fleet.col.alarms", (n) => n.alarms.length],
];

function startFleet() {
  const root = document.getElementById("fleet-root");
  const filter = document.getElementById("fleet-filter");
  const count = document.getElementById("fleet-count");
  const updated = document.getElementById("fleet-updated");
  const errorLine = document.getElementById("fleet-error");
  // Worst first by default: that is what a technician opens this page for.
  let sort = { key: "state", desc: true };
  let nodes = null;
  let table = null, tbody = null;

  function matches(node, needle) {
    if (!needle) return true;
    const hay = [node.id, node.state, t(`fleet.state.${node.state}`), node.sw_version, node.site,
      ...node.floors, ...node.alarms,
      ...node.reasons.flatMap((r) => [r.detail, t(`fleet.reason.${r.code}`)]),
      t(node.online ? "fleet.online" : "fleet.offline")];
    return hay.some((v) => v && String(v).toLowerCase().includes(needle));
  }

  function sorted(list) {
    const [, , value] = COLUMNS.find(([key]) => key === sort.key);
    const dir = sort.desc ? -1 : 1;
    return [...list].sort((a, b) => {
      const va = value(a), vb = value(b);
      if (va < vb) return -dir;
      if (va > vb) return dir;
      return a.id.localeCompare(b.id);  // stable, predictable tie-break
    });
  }

  function header() {
    const row = el("tr");
    for (const [key, label] of COLUMNS) {
      const th = el("th", { scope: "col", dataset: { key } });
      th.append(el("button", {
        type: "button", class: "sort", dataset: { key },
        title: t("fleet.sort_by", { column: t(label) }),
        onclick: () => {
          sort = sort.key === key ? { key, desc: !sort.desc } : { key, desc: key === "state" };
          renderRows();
          announce(t("fleet.sorted", { column: t(label), direction: t(sort.desc ? "fleet.desc" : "fleet.asc") }));
        },
      }, t(label), el("span", { class: "sort-mark", "aria-hidden": "true" })));
      row.append(th);
    }
    return el("thead", {}, row);
  }

  function rowFor(node) {
    const label = (key) => t(COLUMNS.find(([k]) => k === key)[1]);
    // data-label lets the phone layout show each cell with its column name (fleet.css).
    const td = (key, ...children) => el("td", { dataset: { label: label(key), col: key } }, ...children);
    const reasons = node.reasons.length
      ? el("ul", { class: "reasons" }, node.reasons.map((r) => reasonItem(r)))
      : null;
    return el("tr", { dataset: { node: node.id, state: node.state }, "data-testid": "fleet-row" },
      el("th", { scope: "row", dataset: { label: label("node"), col: "node" } },
        el("a", { href: `/fleet/${encodeURIComponent(node.id)}`, dataset: { focusKey: `link:${node.id}` } }, node.id),
        node.site || node.floors.length
          ? el("div", { class: "muted small" }, [node.site, node.floors.join(", ")].filter(Boolean).join(" · "))
          : null),
      td("state", el("div", {}, statePill(node.state), reasons)),
      td("online", onlineText(node.online)),
      td("last_seen", timeAgo(node.last_seen)),
      td("software", node.sw_version || "—"),
      td("config", configText(node)),
      td("outbox", fmtNumber(node.outbox_depth)),
      td("clock", fmtOffset(node.clock_offset_s)),
      td("devices", devicesCell(node)),
      td("alarms", node.alarms.length
        ? el("ul", { class: "alarms" }, node.alarms.map((a) => el("li", { lang: "en" }, a)))
        : el("span", { class: "muted" }, "0")),
    );
  }

  function renderRows() {
    if (nodes === null) return;
    const needle = filter.value.trim().toLowerCase();
    const shown = sorted(nodes.filter((n) => matches(n, needle)));
    count.textContent = t("fleet.count", { shown: shown.length, total: nodes.length });
    if (!nodes.length) {
      table = tbody = null;
      root.replaceChildren(el("p", { class: "muted" }, t("fleet.none")));
      return;
    }
    if (!table) {
      tbody = el("tbody");
      table = el("table", { class: "fleet-table", "data-testid": "fleet-table" },
        el("caption", { class: "visually-hidden" }, t("fleet.title")), header(), tbody);
      root.replaceChildren(el("div", { class: "table-wrap" }, table));
    }
    for (const th of table.tHead.rows[0].cells) {
      const active = th.dataset.key === sort.key;
      if (active) th.setAttribute("aria-sort", sort.desc ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
      th.querySelector(".sort-mark").textContent = active ? (sort.desc ? " ▼" : " ▲") : "";
    }
    // Rebuilding rows would drop keyboard focus from a node link: remember it and put it back.
    const focusKey = document.activeElement?.dataset?.focusKey;
    tbody.replaceChildren(...(shown.length ? shown.map(rowFor)
      : [el("tr", {}, el("td", { colspan: COLUMNS.length, class: "muted" }, t("fleet.no_match")))]));
    if (focusKey) tbody.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus({ preventScroll: true });
  }

  async function refresh() {
    try {
      nodes = await api("/api/v1/fleet/nodes");
      errorLine.hidden = true;
      updated.textContent = t("common.updated", {
        time: new Date().toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit", second: "2-digit" }) });
      renderRows();
    } catch (error) {
      if (nodes === null) {
        root.replaceChildren(el("p", { class: "error", role: "alert" }, t("common.error", { detail: error.message })));
      }
      // Keep the last table: a technician watching a flaky uplink still needs it.
      errorLine.textContent = t("fleet.refresh_failed", { detail: error instanceof ApiError ? error.message : String(error) });
      errorLine.hidden = false;
    }
  }

  filter.addEventListener("input", renderRows);
  // setTimeout after each round (not setInterval): a slow API never stacks requests.
  const loop = async () => {
    if (!document.hidden) await refresh();
    setTimeout(loop, REFRESH_MS);
  };
  loop();
}

if (page.view === "fleet") startFleet();
