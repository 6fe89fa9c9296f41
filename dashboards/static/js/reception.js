// Reception kiosk: check visitors in by scanning their QR pass with the camera
// (BarcodeDetector + getUserMedia where the browser has them), by typing the pass code,
// or by picking them from today's list; check them out. The API decides every step.
import { t, api, el, lang } from "./common.js";

const locale = lang === "id" ? "id-ID" : "en-GB";
const result = document.getElementById("reception-result");
const rows = document.getElementById("reception-rows");
const search = document.getElementById("reception-search");
const form = document.getElementById("reception-form");
const codeInput = document.getElementById("reception-code");
const cardInput = document.getElementById("reception-card");
const cameraButton = document.getElementById("reception-camera");
const cameraNote = document.getElementById("reception-camera-note");
const video = document.getElementById("reception-video");
let stream = null;
let busy = false;

function say(kind, message) {
  result.className = `reception-result ${kind}`;
  result.replaceChildren(el("p", { role: kind === "failed" ? "alert" : null }, message));
}

function clock(iso) {
  return new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit" }).format(new Date(iso));
}

function problem(error) {
  return t("reception.error", { detail: error?.problem?.detail || error?.message || String(error) });
}

async function refresh() {
  const q = search.value.trim();
  const visits = await api("/api/v1/reception/visits", { query: q ? { q } : {} });
  rows.replaceChildren(...visits.map(row));
  if (!visits.length) {
    rows.replaceChildren(el("tr", {}, el("td", { colspan: "6", class: "muted" }, t("reception.list.empty"))));
  }
}

function row(visit) {
  const action = visit.status === "invited"
    ? el("button", { type: "button", class: "primary", "data-testid": `checkin-${visit.id}` }, t("reception.checkin"))
    : visit.status === "checked_in"
      ? el("button", { type: "button", "data-testid": `checkout-${visit.id}` }, t("reception.checkout"))
      : null;
  if (action && visit.status === "invited") {
    action.addEventListener("click", () => checkIn({ visit_id: visit.id }));
  } else if (action) {
    action.addEventListener("click", () => checkOut(visit));
  }
  return el("tr", { "data-visit": String(visit.id), "data-status": visit.status },
    el("td", {}, visit.guest_name),
    el("td", {}, visit.organisation || ""),
    el("td", {}, visit.host_person_id),
    el("td", {}, `${clock(visit.starts_at)}–${clock(visit.ends_at)}`),
    el("td", {}, t(`reception.status.${visit.status}`)),
    el("td", {}, action));
}

async function checkIn(body) {
  if (busy) return;
  busy = true;
  say("", t("reception.working"));
  const card = cardInput.value.trim();
  try {
    const visit = await api("/api/v1/reception/checkin",
      { method: "POST", body: { ...body, ...(card ? { card_uid: card } : {}) } });
    say("done", t("reception.done.in", { name: visit.guest_name }));
    codeInput.value = "";
    cardInput.value = "";
    await refresh();
  } catch (error) {
    say("failed", problem(error));
  } finally {
    busy = false;
  }
}

async function checkOut(visit) {
  try {
    await api(`/api/v1/reception/visits/${visit.id}/checkout`, { method: "POST" });
    say("done", t("reception.done.out", { name: visit.guest_name }));
    await refresh();
  } catch (error) {
    say("failed", problem(error));
  }
}

// --- camera --------------------------------------------------------------------------------

function stopCamera() {
  if (stream) stream.getTracks().forEach((track) => track.stop());
  stream = null;
  video.hidden = true;
  cameraButton.textContent = t("reception.scan.start");
}

async function startCamera() {
  const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
  } catch (error) {
    cameraNote.hidden = false;
    cameraNote.textContent = t("reception.scan.denied", { detail: error.message || String(error) });
    return;
  }
  video.srcObject = stream;
  video.hidden = false;
  cameraButton.textContent = t("reception.scan.stop");
  await video.play();
  const scan = async () => {
    if (!stream) return;
    try {
      const codes = await detector.detect(video);
      if (codes.length && !busy) {
        stopCamera();
        await checkIn({ code: codes[0].rawValue });
        return;
      }
    } catch {
      // A frame not ready yet: try the next one.
    }
    setTimeout(scan, 250);
  };
  scan();
}

if ("BarcodeDetector" in window && navigator.mediaDevices?.getUserMedia) {
  cameraButton.hidden = false;
  cameraButton.addEventListener("click", () => (stream ? stopCamera() : startCamera()));
} else {
  cameraNote.hidden = false;
  cameraNote.textContent = t("reception.scan.unsupported");
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  checkIn({ code: codeInput.value.trim() });
});
let typing = null;
search.addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(() => refresh().catch((error) => say("failed", problem(error))), 200);
});
refresh()
  .catch((error) => say("failed", problem(error)))
  .finally(() => { document.getElementById("reception-root").dataset.ready = "true"; });
