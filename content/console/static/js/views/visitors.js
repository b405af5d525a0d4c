// Visitors: what the body tracking sensor sees, drawn as a box per visitor where the body is (never a camera
// image, never landmarks: the exhibit sends neither), with the number of visitors and each zone's count and dwell.

import { forgetCatalogue, loadCatalogue } from "../catalogue.js";
import { t } from "../i18n.js";
import { el, fill, reconcile, setText } from "../ui.js";

const view = { id: "visitors", topics: [], mount, render, activate, deactivate, onEvent, reconnected };
export default view;

const OWNER = "visitors";

let parts = null;
let sensors = []; // [{name, zones: [zone]}]
let sensor = null;
const values = new Map(); // signal name -> latest value
let watching = [];

function mount(root) {
  parts = {
    picker: el("select.sensor-picker"),
    count: el("p.big-number"),
    countLabel: el("p.hint"),
    zonesTitle: el("h2"),
    zones: el("div.rows"),
    privacy: el("p.hint.privacy"),
    canvas: el("canvas.visitor-map", { width: 640, height: 480 }),
    empty: el("p.empty"),
  };
  parts.picker.addEventListener("change", () => useSensor(view.ctx, parts.picker.value));
  parts.layout = el("div.visitors-layout", {},
      el("div.card.visitor-map-card", {}, el("div.canvas-box", {}, parts.canvas), parts.privacy),
      el("aside.card.visitor-side", {}, parts.picker, parts.countLabel, parts.count, parts.zonesTitle, parts.zones));
  root.append(parts.layout, parts.empty);
}

async function activate(ctx) {
  view.ctx = ctx;
  try {
    const catalogue = await loadCatalogue();
    sensors = findSensors(catalogue);
  } catch {
    sensors = [];
  }
  if (!sensors.some((s) => s.name === sensor)) sensor = sensors[0]?.name ?? null;
  useSensor(ctx, sensor);
}

function deactivate(ctx) {
  // a stream that changes every frame: only while someone looks at it
  ctx.live?.unwatch(watching, OWNER);
  watching = [];
}

function reconnected(ctx) {
  forgetCatalogue();
  if (view.root && !view.root.hidden) activate(ctx);
}

/** Pose sensors are the owners of an object signal `<sensor>.visitors` beside `<sensor>.count`. */
function findSensors(catalogue) {
  const found = [];
  for (const signal of catalogue.values()) {
    if (!signal.name.endsWith(".visitors") || signal.type !== "object") continue;
    const name = signal.name.slice(0, -".visitors".length);
    if (!catalogue.has(`${name}.count`)) continue;
    const zones = [];
    for (const other of catalogue.keys()) {
      const match = other.match(/^(.+)\.zone\.([^.]+)\.count$/);
      if (match && match[1] === name) zones.push(match[2]);
    }
    found.push({ name, zones: zones.sort() });
  }
  return found.sort((a, b) => a.name.localeCompare(b.name));
}

function useSensor(ctx, name) {
  sensor = name;
  const chosen = sensors.find((s) => s.name === name);
  const wanted = chosen
    ? [`${name}.visitors`, `${name}.count`, ...chosen.zones.flatMap((z) => [`${name}.zone.${z}.count`, `${name}.zone.${z}.dwell`])]
    : [];
  ctx.live.unwatch(watching.filter((w) => !wanted.includes(w)), OWNER);
  ctx.live.watch(wanted, OWNER);
  watching = wanted;
  view.dirty = true;
  ctx.rerender();
}

function onEvent(event) {
  if (!event.topic.startsWith("signal/")) return;
  const name = event.topic.slice(7);
  if (!watching.includes(name)) return;
  values.set(name, event.data?.stale ? null : event.data?.value);
  view.dirty = true;
}

function render() {
  parts.empty.hidden = Boolean(sensor);
  setText(parts.empty, t("visitors.no_sensor"));
  parts.layout.hidden = !sensor;
  if (!sensor) return;
  const chosen = sensors.find((s) => s.name === sensor);
  reconcile(
    parts.picker,
    sensors,
    (s) => s.name,
    (s) => el("option", { value: s.name }, s.name),
    () => undefined,
  );
  parts.picker.value = sensor;
  parts.picker.hidden = sensors.length < 2;
  setText(parts.privacy, t("visitors.privacy"));
  setText(parts.countLabel, t("visitors.count"));
  const count = values.get(`${sensor}.count`);
  setText(parts.count, typeof count === "number" ? String(count) : "–");
  parts.count.dataset.count = String(count ?? "");
  setText(parts.zonesTitle, t("visitors.zones"));
  if (!chosen.zones.length) fill(parts.zones, el("p.empty", {}, t("visitors.no_zones")));
  else {
    parts.zones.querySelector(":scope > .empty")?.remove();
    reconcile(
      parts.zones,
      chosen.zones,
      (z) => z,
      (z) => {
        const row = el("div.row.zone", { dataset: { zone: z } });
        row.figures = el("span.row-value");
        row.append(el("div.row-head", {}, el("span.row-name", {}, z), row.figures));
        return row;
      },
      (row, z) => {
        const n = values.get(`${sensor}.zone.${z}.count`) ?? 0;
        const dwell = values.get(`${sensor}.zone.${z}.dwell`) ?? 0;
        setText(row.figures, `${t("visitors.zone_count", { n })} · ${t("visitors.zone_dwell", { s: Number(dwell).toFixed(1) })}`);
      },
    );
  }
  draw(values.get(`${sensor}.visitors`));
}

/** The box around a visitor's visible body, image space 0..1 with y down ({x0, y0, x1, y1}), or null. */
function box(visitor) {
  const b = visitor?.box;
  if (!Array.isArray(b) || b.length !== 4 || !b.every(Number.isFinite)) return null;
  return { x0: b[0], y0: b[1], x1: b[2], y1: b[3] };
}

function draw(visitors) {
  const canvas = parts.canvas;
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const g = canvas.getContext("2d");
  g.fillStyle = "#0b1020";
  g.fillRect(0, 0, width, height);
  const list = Array.isArray(visitors) ? visitors : [];
  if (!list.length) {
    g.fillStyle = "rgba(255,255,255,0.5)";
    g.font = `${16 * ratio}px "Exhibit Sans", sans-serif`;
    g.textAlign = "center";
    g.fillText(t("visitors.nobody"), width / 2, height / 2);
    return;
  }
  for (const visitor of list) {
    const b = box(visitor);
    if (!b) continue;
    const hue = ((Number(visitor.id) || 0) * 67) % 360;
    const [x, y, w, h] = [b.x0 * width, b.y0 * height, (b.x1 - b.x0) * width, (b.y1 - b.y0) * height];
    // a filled box where the body is, brighter as the hands go up: what the logic sees, not what they look like
    const raised = Number.isFinite(visitor.hands_raised) ? visitor.hands_raised : 0;
    g.fillStyle = `hsl(${hue} 90% 60% / ${0.25 + 0.5 * raised})`;
    g.strokeStyle = `hsl(${hue} 90% 65%)`;
    g.lineWidth = 3 * ratio;
    g.fillRect(x, y, w, h);
    g.strokeRect(x, y, w, h);
    if (Number.isFinite(visitor.floor_x) && Number.isFinite(visitor.floor_y)) {
      g.beginPath(); // where the feet are: what floor zones use
      g.arc(visitor.floor_x * width, visitor.floor_y * height, 6 * ratio, 0, Math.PI * 2);
      g.fillStyle = g.strokeStyle;
      g.fill();
    }
    g.fillStyle = g.strokeStyle;
    g.font = `${14 * ratio}px "Exhibit Sans", sans-serif`;
    g.textAlign = "center";
    g.fillText(t("visitors.visitor", { id: visitor.id }), x + w / 2, Math.max(16 * ratio, y - 8 * ratio));
  }
}
