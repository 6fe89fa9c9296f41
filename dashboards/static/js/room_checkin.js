// Room check-in from a phone (/room-checkin/{room}?k=...): the QR on the room panel opens
// this page; the key proves the person saw the room's code, the API finds the meeting.
import { api, page, t } from "./common.js";

const out = document.getElementById("room-checkin-result");
try {
  const booking = await api(`/api/v1/rooms/${encodeURIComponent(page.room)}/checkin`,
    { method: "POST", body: { key: page.key } });
  out.textContent = t("room_checkin.done", { until: new Date(booking.ends_at).toLocaleTimeString(
    page.lang === "id" ? "id-ID" : "en-GB", { hour: "2-digit", minute: "2-digit" }) });
} catch (error) {
  out.textContent = t("room_checkin.failed", { reason: error.message });
}
