// The transport network as an inline SVG drawn from GTFS shapes and stops: no map
// tiles (the building is air-gapped), only the geometry the schedule carries.
//
// Latitude/longitude are projected onto a local flat plane (equirectangular around
// the network's centre, x scaled by cos(latitude)): over the few kilometres of a
// shuttle network that is accurate to well under a marker's size, and it needs no
// library. The network (route lines, stops) is drawn once; vehicles live in their
// own layer and are moved in place, one <g> per vehicle, so a live update touches
// only the markers that changed.

import { svg } from "./common.js";

const VIEW_WIDTH = 1000;
const PAD = 40;
const LABEL_ROOM = 150;  // right of the easternmost stop, for its name

/** A projection fitted to `points` ([lat, lon] pairs) in a VIEW_WIDTH-wide viewBox. */
export function fitProjection(points) {
  const lats = points.map((p) => p[0]);
  const lons = points.map((p) => p[1]);
  const minLat = Math.min(...lats), maxLat = Math.max(...lats);
  const minLon = Math.min(...lons), maxLon = Math.max(...lons);
  const midLat = (minLat + maxLat) / 2;
  const kx = Math.cos((midLat * Math.PI) / 180);
  // The longer side fills the width; a single point still gets a sane scale.
  const spanX = Math.max((maxLon - minLon) * kx, 1e-4);
  const spanY = Math.max(maxLat - minLat, 1e-4);
  const scale = Math.min((VIEW_WIDTH - 2 * PAD - LABEL_ROOM) / spanX, (VIEW_WIDTH - 2 * PAD) / spanY);
  const width = VIEW_WIDTH;
  const height = Math.round(spanY * scale + 2 * PAD);
  const offsetX = (VIEW_WIDTH - LABEL_ROOM - spanX * scale) / 2;
  return {
    width,
    height,
    project(lat, lon) {
      return [offsetX + (lon - minLon) * kx * scale, PAD + (maxLat - lat) * scale];
    },
  };
}

const fmt = (n) => n.toFixed(1);

function pathData(projection, points) {
  return points.map(([lat, lon], i) => {
    const [x, y] = projection.project(lat, lon);
    return `${i ? "L" : "M"}${fmt(x)} ${fmt(y)}`;
  }).join(" ");
}

/** Route colour from GTFS (hex without '#'), or a stable palette pick by id. */
const PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9"];
export function routeColour(route, index = 0) {
  const c = route && route.color;
  return c && /^[0-9a-fA-F]{6}$/.test(c) ? `#${c}` : PALETTE[index % PALETTE.length];
}

/**
 * Draws the network into a new <svg>: one path per shape (coloured by its route),
 * one circle per stop with its name for screen readers. Returns the map object
 * whose `vehicles` layer `placeVehicles` updates.
 *   shapes: [{id, route_id, points: [[lat, lon], ...]}]
 *   stops:  [{id, name, lat, lon}]
 *   routes: [{id, short_name, color}]
 */
export function drawNetwork({ shapes, stops, routes, title }) {
  const points = [...shapes.flatMap((s) => s.points), ...stops.map((s) => [s.lat, s.lon])];
  const projection = fitProjection(points.length ? points : [[0, 0]]);
  const colourOf = new Map(routes.map((r, i) => [r.id, routeColour(r, i)]));
  const root = svg("svg", {
    class: "transit-svg",
    viewBox: `0 0 ${projection.width} ${projection.height}`,
    role: "img",
    "aria-label": title,
    "data-testid": "transit-map",
  });
  const lines = svg("g", { class: "routes" });
  for (const shape of shapes) {
    lines.append(svg("path", {
      class: "route-line",
      d: pathData(projection, shape.points),
      stroke: colourOf.get(shape.route_id) || PALETTE[0],
      "data-shape": shape.id,
      "data-route": shape.route_id,
    }));
  }
  const stopLayer = svg("g", { class: "stops" });
  for (const stop of stops) {
    const [x, y] = projection.project(stop.lat, stop.lon);
    stopLayer.append(svg("g", { class: "stop", "data-stop": stop.id, transform: `translate(${fmt(x)} ${fmt(y)})` },
      svg("title", {}, document.createTextNode(stop.name)),
      svg("circle", { r: 7 }),
      svg("text", { class: "stop-name", x: 10, y: -10 }, document.createTextNode(stop.name))));
  }
  const vehicles = svg("g", { class: "vehicles" });
  root.append(lines, stopLayer, vehicles);
  return { root, projection, vehicles, markers: new Map() };
}

/** Which highlight a vehicle gets: the worst of offline, stale and off-route first. */
export function vehicleAlert(v) {
  if (v.state === "offline") return "offline";
  if (v.stale) return "stale";
  if (v.off_route) return "off_route";
  return "";
}

/**
 * Creates, moves or removes vehicle markers so the layer shows exactly `vehicles`
 * (live API rows: vehicle, kind, lat, lon, state, stale, off_route, route, trip, load).
 * `label(v)` gives the accessible name; `onSelect(id)` is called on click/Enter.
 */
export function placeVehicles(map, vehicles, { label, onSelect, selected } = {}) {
  const seen = new Set();
  for (const v of vehicles) {
    if (v.lat === null || v.lat === undefined || v.lon === null || v.lon === undefined) continue;
    seen.add(v.vehicle);
    let g = map.markers.get(v.vehicle);
    if (!g) {
      g = svg("g", { class: "vehicle", tabindex: "0", role: "button", "data-vehicle": v.vehicle },
        svg("title", {}),
        svg("circle", { class: "halo", r: 16 }),
        v.kind === "poolcar" ? svg("rect", { class: "body", x: -9, y: -9, width: 18, height: 18, rx: 3 })
          : svg("circle", { class: "body", r: 10 }),
        svg("text", { class: "vehicle-label", x: 14, y: 5 }));
      if (onSelect) {
        g.addEventListener("click", () => onSelect(v.vehicle));
        g.addEventListener("keydown", (e) => {
          if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onSelect(v.vehicle); }
        });
      }
      map.vehicles.append(g);
      map.markers.set(v.vehicle, g);
    }
    const [x, y] = map.projection.project(v.lat, v.lon);
    g.setAttribute("transform", `translate(${fmt(x)} ${fmt(y)})`);
    g.dataset.state = v.state || "unknown";
    g.dataset.alert = vehicleAlert(v);
    g.dataset.route = v.route || "";
    g.dataset.lat = String(v.lat);
    g.dataset.lon = String(v.lon);
    g.classList.toggle("selected", selected === v.vehicle);
    const name = label ? label(v) : v.vehicle;
    g.setAttribute("aria-label", name);
    g.querySelector("title").textContent = name;
    g.querySelector(".vehicle-label").textContent = v.vehicle;
  }
  for (const [id, g] of map.markers) {
    if (!seen.has(id)) { g.remove(); map.markers.delete(id); }
  }
}
