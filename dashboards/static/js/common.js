// Shared helpers of the dashboard pages: strings, API calls, small DOM and export utilities.
// Plain ES module, no build step. Every view imports what it needs from here.

export const page = JSON.parse(document.getElementById("ruang-page").textContent);
const strings = JSON.parse(document.getElementById("ruang-strings").textContent);
export const lang = page.lang;
const locale = lang === "id" ? "id-ID" : "en-GB";

/** Translated string; `{name}` placeholders filled from `values`. */
export function t(key, values = {}) {
  const text = strings[key];
  if (text === undefined) return `[${key}]`;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in values ? String(values[name]) : m));
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

// Set once the person submits a sign-out form. A call of this page answered 401 meanwhile
// (the session just ended) must not send the browser to the sign-in page "to come back
// here": that navigation would race the sign-out's own and could win.
let signingOut = false;
document.addEventListener("submit", (event) => {
  const action = event.target?.getAttribute?.("action") || "";
  if (action.startsWith("/logout")) signingOut = true;
}, true);

/** Calls the cloud API with the session cookie; JSON in and out; problem+json -> ApiError. */
export async function api(path, { method = "GET", body, query, raw = false } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers[page.csrfHeader] = "1";  // the API refuses cookie writes without it
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && page.view !== "kiosk") {
    if (!signingOut) {
      location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    }
    throw new ApiError(401, { detail: "signed out" });
  }
  if (!response.ok) {
    let problem = null;
    try { problem = await response.json(); } catch { /* not JSON */ }
    throw new ApiError(response.status, problem);
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

/** document.createElement with attributes/properties and children in one call. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    // Through the CSSOM: a style attribute is inline style, which the CSP refuses.
    else if (k === "style") node.style.cssText = v;
    else if (k in node && typeof v !== "string") node[k] = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const svgNS = "http://www.w3.org/2000/svg";
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

export function fmtTime(iso) {
  return iso ? new Date(iso).toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" }) : "—";
}
export function fmtDateTime(iso) {
  return iso ? new Date(iso).toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" }) : "—";
}
export function fmtNumber(value, digits = 0) {
  return value === null || value === undefined ? "—"
    : Number(value).toLocaleString(locale, { maximumFractionDigits: digits, minimumFractionDigits: digits });
}
export function fmtPercent(fraction, digits = 1) {
  return fraction === null || fraction === undefined ? "—" : `${fmtNumber(fraction * 100, digits)} %`;
}

/** Tells screen-reader users what changed (one polite live region per page). */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (region) region.textContent = message;
}

/** Shows an error inside `container` with a retry button. */
export function showError(container, error, retry) {
  container.replaceChildren(el("p", { class: "error", role: "alert" },
    t("common.error", { detail: error.message })),
  retry ? el("button", { type: "button", onclick: retry }, t("common.retry")) : null);
}

function download(blob, filename) {
  const a = el("a", { href: URL.createObjectURL(blob), download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  // Revoked late: the browser may fetch the blob well after the click on a busy machine.
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}

/** Rows (arrays) to an RFC 4180 CSV download. */
export function downloadCsv(filename, header, rows) {
  const cell = (v) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const text = [header, ...rows].map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n";
  download(new Blob([text], { type: "text/csv;charset=utf-8" }), filename);
}

/** Fetches an API CSV export (the server's numbers, byte for byte) and downloads it. */
export async function downloadApiCsv(path, query, filename) {
  const response = await api(path, { query: { ...query, format: "csv" }, raw: true });
  download(await response.blob(), filename);
}

/** Renders an inline <svg> chart to a PNG download (white background, 2x for print). */
export async function downloadSvgAsPng(svgElement, filename, scale = 2) {
  const clone = svgElement.cloneNode(true);
  const box = svgElement.getBoundingClientRect();
  clone.setAttribute("xmlns", svgNS);
  clone.setAttribute("width", box.width);
  clone.setAttribute("height", box.height);
  const text = new XMLSerializer().serializeToString(clone);
  const image = new Image();
  image.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(text)}`;
  await image.decode();
  const canvas = el("canvas", { width: Math.ceil(box.width * scale), height: Math.ceil(box.height * scale) });
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.scale(scale, scale);
  ctx.drawImage(image, 0, 0);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  download(blob, filename);
}

/** Server-sent events with a visible live/reconnecting state; EventSource retries by itself. */
export function liveStream(url, handlers, statusElement) {
  const source = new EventSource(url, { withCredentials: true });
  const setStatus = (key) => { if (statusElement) statusElement.textContent = t(key); };
  source.onopen = () => setStatus("common.live");
  source.onerror = () => setStatus("common.reconnecting");
  for (const [event, handler] of Object.entries(handlers)) {
    source.addEventListener(event, (e) => handler(e.data ? JSON.parse(e.data) : null));
  }
  return source;
}
