// Visitors: what the body tracking sensor sees, drawn as skeletons from its landmarks (never a
// camera image), with the number of visitors and each zone's count and dwell.

import { forgetCatalogue, loadCatalogue } from "../catalogue.js";
import { t } from "../i18n.js";
import { el, fill, reconcile, setText } from "../ui.js";

const view = { id: "visitors", topics: [], mount, render, activate, deactivate, onEvent, reconnected };
export default view;

const OWNER = "visitors";
const MIN_VISIBILITY = 0.5;
// MediaPipe BlazePose's 33 landmarks, joined as its own drawing utilities join them.
const BONES = [
  [0, 1], [1, 2], [2, 3], [3, 7], [0, 4], [4, 5], [5, 6], [6, 8], [9, 10],
  [11, 12], [11, 23], [12, 24], [23, 24],
  [11, 13], [13, 15], [15, 17], [15, 19], [15, 21], [17, 19],
  [12, 14], [14, 16], [16, 18], [16, 20], [16, 22], [18, 20],
  [23, 25], [25, 27], [27, 29], [29, 31], [27, 31],
  [24, 26], [26, 28], [28, 30], [30, 32], [28, 32],
];

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
    canvas: el("canvas.skeletons", { width: 640, height: 480 }),
    empty: el("p.empty"),
  };
  parts.picker.addEventListener("change", () => useSensor(view.ctx, parts.picker.value));
  parts.layout = el("div.visitors-layout", {},
      el("div.card.skeleton-card", {}, el("div.canvas-box", {}, parts.canvas), parts.privacy),
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
  // landmarks are the heaviest stream there is: only while someone looks at them
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

/** Landmarks as [[x, y, z, visibility], ...] (or {x, y, visibility} objects), image space 0..1, y down. */
function points(visitor) {
  const raw = visitor?.landmarks ?? visitor?.smoothed ?? null;
  if (!Array.isArray(raw)) return null;
  return raw.map((p) =>
    Array.isArray(p) ? { x: p[0], y: p[1], v: p[3] ?? 1 } : { x: p?.x, y: p?.y, v: p?.visibility ?? p?.v ?? 1 },
  );
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
  const seen = (p) => p && Number.isFinite(p.x) && Number.isFinite(p.y) && (p.v ?? 1) >= MIN_VISIBILITY;
  for (const visitor of list) {
    const landmarks = points(visitor);
    if (!landmarks) continue;
    const hue = ((Number(visitor.id) || 0) * 67) % 360;
    g.strokeStyle = `hsl(${hue} 90% 65%)`;
    g.fillStyle = g.strokeStyle;
    g.lineWidth = 3 * ratio;
    g.lineCap = "round";
    for (const [a, b] of BONES) {
      const p = landmarks[a];
      const q = landmarks[b];
      if (!seen(p) || !seen(q)) continue;
      g.beginPath();
      g.moveTo(p.x * width, p.y * height);
      g.lineTo(q.x * width, q.y * height);
      g.stroke();
    }
    for (const p of landmarks) {
      if (!seen(p)) continue;
      g.beginPath();
      g.arc(p.x * width, p.y * height, 3 * ratio, 0, Math.PI * 2);
      g.fill();
    }
    const head = landmarks[0];
    if (seen(head)) {
      g.font = `${14 * ratio}px "Exhibit Sans", sans-serif`;
      g.textAlign = "center";
      g.fillText(t("visitors.visitor", { id: visitor.id }), head.x * width, Math.max(16 * ratio, head.y * height - 18 * ratio));
    }
  }
}
