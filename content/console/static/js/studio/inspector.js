// Inspector: every device property with what drives it now and why (mapping, fade, timeline, cue, preset...)
// and what else could; every signal with its value and last change. Click a signal to plot it live.

import { getJSON } from "../api.js";
import { t } from "../i18n.js";
import { el, fill, reconcile, setText, showValue, toggle } from "../ui.js";
import { drawPlot } from "../views/signals.js";

const pane = { id: "inspector", mount, activate, deactivate, translate, onEvent };
export default pane;

const REFRESH_MS = 500;
const WINDOW_MS = 30_000;
let parts = null;
let studio = null;
let timer = 0;
let data = null;
let plotted = null; // {name, points: [[ms, value]]}
let animation = 0;
let visible = false;

function mount(root, shared) {
  studio = shared;
  parts = {
    root,
    devicesTitle: el("h2"),
    devices: el("ul.inspect-list", { id: "inspect-devices" }),
    signalsTitle: el("h2"),
    filter: el("input.search", { type: "search", id: "inspect-filter", autocomplete: "off" }),
    signals: el("ul.inspect-list", { id: "inspect-signals" }),
    plotTitle: el("h3", { id: "inspect-plot-title" }),
    plot: el("canvas.inspect-plot", { id: "inspect-plot" }),
  };
  parts.filter.addEventListener("input", () => render());
  root.append(
    el("div.card", {}, parts.plotTitle, parts.plot),
    el("div.card", {}, parts.devicesTitle, parts.devices),
    el("div.card", {}, parts.signalsTitle, parts.filter, parts.signals),
  );
  translate();
}

function translate() {
  if (!parts) return;
  setText(parts.devicesTitle, t("studio.devices"));
  setText(parts.signalsTitle, t("studio.signals"));
  parts.filter.placeholder = t("studio.filter");
  setText(parts.plotTitle, plotted ? plotted.name : t("studio.plot_hint"));
  if (data) render();
}

function activate() {
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
  visible = true;
  if (plotted) animation = requestAnimationFrame(drawLoop);
}

function deactivate() {
  clearInterval(timer);
  visible = false;
  cancelAnimationFrame(animation);
  animation = 0;
}

async function refresh() {
  const fresh = await getJSON("/api/v1/studio/inspect").catch(() => null);
  if (!fresh) return;
  data = fresh;
  render();
}

function render() {
  reconcile(parts.devices, data.devices, (d) => `${d.device}.${d.property}`, createDevice, updateDevice);
  const wanted = parts.filter.value.trim().toLowerCase();
  const signals = wanted ? data.signals.filter((s) => s.name.toLowerCase().includes(wanted)) : data.signals;
  reconcile(parts.signals, signals, (s) => s.name, createSignal, updateSignal);
}

function createDevice(entry) {
  const row = el("li.inspect-row", { dataset: { property: `${entry.device}.${entry.property}` } });
  row.parts = { value: el("span.value.mono"), driver: el("div.driver"), others: el("div.driver") };
  row.append(el("span.name", {}, `${entry.device}.${entry.property}`), row.parts.value, row.parts.driver, row.parts.others);
  updateDevice(row, entry);
  return row;
}

function updateDevice(row, entry) {
  setText(row.parts.value, showValue(entry.value));
  const driver = entry.driver;
  row.dataset.kind = driver?.kind || "";
  fill(
    row.parts.driver,
    `${t("studio.driven_by")}: `,
    driver ? el("b", {}, `${kindWord(driver.kind)} ${driver.name || ""}`) : t("studio.nothing"),
    driver?.detail ? ` — ${driver.detail}` : "",
  );
  const others = (entry.candidates || []).filter((c) => !(driver && c.kind === driver.kind && c.name === driver.name));
  row.parts.others.hidden = !others.length;
  fill(row.parts.others, `${t("studio.candidates")}: `, others.map((c) => describe(c)).join("; "));
}

function describe(candidate) {
  const why = candidate.why ?? candidate.detail ?? "";
  return `${kindWord(candidate.kind)} ${candidate.name}${why ? ` (${why})` : ""}`;
}

/** What drives a property (mapping, timeline, cue...) in the page's language; the details stay as written. */
function kindWord(kind) {
  const key = `studio.kind.${kind}`;
  const word = t(key);
  return word === key ? kind : word;
}

function createSignal(signal) {
  const row = el("li.inspect-row", { dataset: { signal: signal.name } });
  row.parts = { value: el("span.value.mono"), changed: el("span.hint") };
  const name = el("span.name", { title: signal.meaning || "", onclick: () => plot(signal.name) }, signal.name);
  row.append(name, row.parts.value, row.parts.changed);
  updateSignal(row, signal);
  return row;
}

function updateSignal(row, signal) {
  setText(row.parts.value, showValue(signal.value));
  setText(row.parts.changed, signal.changed === null || signal.changed === undefined ? "" : t("studio.ago", { s: signal.changed.toFixed(1) }));
  toggle(row, "stale", signal.stale);
}

// --- the plot: the chosen signal, live over the WebSocket --------------------------------------------

function plot(name) {
  if (plotted) studio.live.unwatch([plotted.name], "inspector");
  plotted = { name, points: [] };
  setText(parts.plotTitle, name);
  studio.live.watch([name], "inspector");
  // Drawn only while a signal is plotted and the pane shows: an idle inspector costs the browser nothing.
  if (visible && !animation) animation = requestAnimationFrame(drawLoop);
}

function onEvent(event) {
  if (!plotted || event.topic !== `signal/${plotted.name}`) return;
  const raw = event.data?.value;
  const value = typeof raw === "boolean" ? Number(raw) : raw;
  const now = Date.now();
  if (typeof value === "number" && Number.isFinite(value)) plotted.points.push([now, value]);
  while (plotted.points.length && plotted.points[0][0] < now - WINDOW_MS - 5000) plotted.points.shift();
}

function drawLoop() {
  animation = 0;
  if (!plotted || !visible) return;
  drawPlot(parts.plot, plotted.points, Date.now(), false, false);
  animation = requestAnimationFrame(drawLoop);
}
