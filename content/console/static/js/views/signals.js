// Signals: choose signals from the catalogue and watch them live: numbers, true/false and events
// are plotted over the last 30 s on a canvas, text and objects show their latest value.

import { forgetCatalogue, loadCatalogue } from "../catalogue.js";
import { t } from "../i18n.js";
import { el, fill, reconcile, setText, showValue } from "../ui.js";

const view = { id: "signals", topics: [], mount, render, activate, deactivate, onEvent, reconnected, unmount };
export default view;

const WINDOW_S = 30;
const KEEP_S = WINDOW_S + 5;
const STORAGE_KEY = "exhibit.console.signals";
const PLOTTED = new Set(["float", "int", "bool", "event"]);
const MAX_LISTED = 300;

let parts = null;
let catalogue = null;
let chosen = [];
const history = new Map(); // name -> {points: [[ms, value]], latest, stale}
let animation = 0;

function mount(root, ctx) {
  parts = {
    search: el("input.search", { type: "search", autocomplete: "off" }),
    count: el("p.hint"),
    list: el("ul.signal-list"),
    plots: el("div.plots"),
    pickTitle: el("h2"),
    windowTitle: el("h2"),
  };
  parts.search.addEventListener("input", () => renderList(ctx));
  root.append(
    el("div.signals-layout", {},
      el("aside.card.signal-picker", {}, parts.pickTitle, parts.search, parts.count, parts.list),
      el("div.card.signal-plots", {}, parts.windowTitle, parts.plots)),
  );
  chosen = restoreChoice();
  if (chosen.length) ctx.live.watch(chosen, "signals");
}

function unmount() {
  cancelAnimationFrame(animation);
  animation = 0;
}

function restoreChoice() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "[]");
    return Array.isArray(saved) ? saved.filter((name) => typeof name === "string") : [];
  } catch {
    return [];
  }
}

function saveChoice() {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(chosen));
  } catch {
    // not remembered: fine
  }
}

async function activate(ctx) {
  if (!catalogue) {
    try {
      catalogue = await loadCatalogue();
    } catch {
      catalogue = null;
      setText(parts.count, t("signals.catalogue_failed"));
    }
    view.dirty = true;
    ctx.rerender();
  }
  const loop = () => {
    drawPlots();
    animation = requestAnimationFrame(loop);
  };
  cancelAnimationFrame(animation);
  animation = requestAnimationFrame(loop);
}

function deactivate() {
  cancelAnimationFrame(animation);
  animation = 0;
}

function reconnected(ctx) {
  forgetCatalogue(); // a reload may have changed the signals
  catalogue = null;
  if (view.root && !view.root.hidden) activate(ctx);
}

function onEvent(event, ctx) {
  if (event.topic === "error" && event.data?.code === "not_found" && chosen.includes(event.data.signal)) {
    drop(ctx, event.data.signal); // chosen in an earlier version of the exhibit: gone now
    return;
  }
  if (!event.topic.startsWith("signal/")) return;
  const name = event.topic.slice(7);
  if (!chosen.includes(name)) return;
  const data = event.data || {};
  const entry = history.get(name) || { points: [], latest: undefined, stale: false };
  const now = Date.now();
  entry.latest = data.value;
  entry.stale = Boolean(data.stale);
  const value = typeof data.value === "boolean" ? Number(data.value) : data.value;
  if (typeof value === "number" && Number.isFinite(value)) entry.points.push([now, value]);
  else if (typeOf(name) === "event" && data.value !== null && data.value !== undefined) entry.points.push([now, 1]);
  while (entry.points.length && entry.points[0][0] < now - KEEP_S * 1000) entry.points.shift();
  history.set(name, entry);
  view.dirty = true;
}

function typeOf(name) {
  return catalogue?.get(name)?.type;
}

function render(ctx) {
  setText(parts.pickTitle, t("signals.pick"));
  setText(parts.windowTitle, t("signals.window"));
  parts.search.placeholder = t("signals.search");
  renderList(ctx);
  renderPlots(ctx);
}

function renderList(ctx) {
  if (!catalogue) {
    fill(parts.list);
    return;
  }
  const query = parts.search.value.trim().toLowerCase();
  const matches = [...catalogue.values()].filter(
    (s) => !query || s.name.toLowerCase().includes(query) || (s.meaning || "").toLowerCase().includes(query),
  );
  setText(parts.count, t("signals.count", { shown: Math.min(matches.length, MAX_LISTED), total: catalogue.size }));
  reconcile(
    parts.list,
    matches.slice(0, MAX_LISTED),
    (s) => s.name,
    (s) => {
      const box = el("input", { type: "checkbox", dataset: { signal: s.name } });
      box.addEventListener("change", () => (box.checked ? choose(ctx, s.name) : drop(ctx, s.name)));
      const item = el("li", {}, el("label", { title: s.meaning || "" }, box,
        el("span.signal-name", {}, s.name), el("span.signal-type", {}, s.type)));
      item.box = box;
      return item;
    },
    (item, s) => {
      item.box.checked = chosen.includes(s.name);
    },
  );
}

function choose(ctx, name) {
  if (!chosen.includes(name)) chosen.push(name);
  saveChoice();
  ctx.live.watch([name], "signals");
  view.dirty = true;
  ctx.rerender();
}

function drop(ctx, name) {
  chosen = chosen.filter((n) => n !== name);
  history.delete(name);
  saveChoice();
  ctx.live.unwatch([name], "signals");
  view.dirty = true;
  ctx.rerender();
}

function renderPlots(ctx) {
  if (!chosen.length) {
    fill(parts.plots, el("p.empty", {}, t("signals.none_chosen")));
    return;
  }
  parts.plots.querySelector(":scope > .empty")?.remove();
  reconcile(
    parts.plots,
    chosen,
    (name) => name,
    (name) => {
      const row = el("div.plot", { dataset: { signal: name } });
      row.value = el("span.plot-value.mono");
      row.meaning = el("span.hint");
      row.canvas = el("canvas.plot-canvas", { height: 90 });
      row.remove_ = el("button.small", { type: "button", onclick: () => drop(ctx, name) });
      row.append(el("div.plot-head", {}, el("span.signal-name", {}, name), row.value, row.meaning, row.remove_));
      row.append(row.canvas);
      return row;
    },
    (row, name) => {
      const entry = history.get(name);
      const type = typeOf(name);
      const stale = entry?.stale ? ` (${t("signals.stale")})` : "";
      setText(row.value, entry ? `${showValue(entry.latest)}${stale}` : t("signals.no_value"));
      row.classList.toggle("stale", Boolean(entry?.stale));
      setText(row.meaning, catalogue?.get(name)?.meaning || "");
      setText(row.remove_, t("signals.remove"));
      row.canvas.hidden = Boolean(type) && !PLOTTED.has(type);
    },
  );
}

function drawPlots() {
  if (!parts) return;
  const now = Date.now();
  for (const row of parts.plots.querySelectorAll(".plot")) {
    const canvas = row.querySelector("canvas");
    if (!canvas || canvas.hidden) continue;
    const name = row.dataset.signal;
    drawPlot(canvas, history.get(name)?.points || [], now, typeOf(name) === "event", row.classList.contains("stale"));
  }
}

export function drawPlot(canvas, points, now, events, stale) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, width, height);
  const start = now - WINDOW_S * 1000;
  const x = (ms) => ((ms - start) / (WINDOW_S * 1000)) * width;
  g.strokeStyle = "rgba(255,255,255,0.08)";
  g.lineWidth = 1;
  for (let s = 0; s <= WINDOW_S; s += 5) {
    const px = Math.round(x(now - s * 1000)) + 0.5;
    g.beginPath();
    g.moveTo(px, 0);
    g.lineTo(px, height);
    g.stroke();
  }
  if (!points.length) return;
  const colour = stale ? "#8a8f98" : "#ffb347";
  if (events) {
    g.fillStyle = colour;
    for (const [ms] of points) if (ms >= start) g.fillRect(x(ms) - ratio, height * 0.2, 2 * ratio, height * 0.6);
    return;
  }
  let low = Infinity;
  let high = -Infinity;
  for (const [, value] of points) {
    low = Math.min(low, value);
    high = Math.max(high, value);
  }
  if (high - low < 1e-9) {
    low -= 1;
    high += 1;
  }
  const pad = (high - low) * 0.1;
  const y = (value) => height - ((value - (low - pad)) / (high - low + 2 * pad)) * height;
  g.strokeStyle = colour;
  g.lineWidth = 2 * ratio;
  g.beginPath();
  let previous = null;
  for (const [ms, value] of points) {
    const px = Math.max(0, x(ms));
    if (previous === null) g.moveTo(px, y(value));
    else g.lineTo(px, y(previous)); // a signal holds its value until the next change
    g.lineTo(px, y(value));
    previous = value;
  }
  g.lineTo(width, y(previous));
  g.stroke();
  g.fillStyle = "rgba(255,255,255,0.55)";
  g.font = `${11 * ratio}px "Exhibit Sans", sans-serif`;
  g.fillText(showValue(high), 4 * ratio, 12 * ratio);
  g.fillText(showValue(low), 4 * ratio, height - 4 * ratio);
}
