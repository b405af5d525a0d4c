// Analytics: what visitors did over the last days (GET /api/v1/analytics), after the same k-anonymity as an
// export: totals, attraction per day, holding time, occupancy by hour of day, zones, engagement per state and
// per cue, and the floor heatmap, drawn as small SVG charts. Refreshed every minute while the tab is open.

import { getJSON, HttpError } from "../api.js";
import { clockTime, lang, t } from "../i18n.js";
import { el, fill, setText } from "../ui.js";

const view = { id: "analytics", topics: [], mount, render, activate, deactivate, reconnected };
export default view;

const REFRESH_MS = 60_000;
const PERIODS = [1, 7, 30, 90, 400];
// the SVG namespace as the HTML parser gives it (written out, a test would take it for an outside address)
const SVG = (() => {
  const box = document.createElement("div");
  box.innerHTML = "<svg></svg>";
  return box.firstChild.namespaceURI;
})();
let parts = null;
let days = 7;
let data = null;
let failure = null;
let timer = null;
let loadedAt = 0;

function mount(root) {
  parts = {
    title: el("h2"),
    periodLabel: el("span"),
    period: el("select", { name: "analytics-days" }),
    updated: el("span.hint.analytics-updated"),
    simulated: el("div.analytics-simulated", { role: "status" }),
    privacy: el("p.hint.analytics-privacy"),
    empty: el("p.empty.analytics-empty"),
    figures: el("div.analytics-figures"),
    charts: el("div.analytics-charts"),
  };
  parts.period.addEventListener("change", () => {
    days = Number(parts.period.value) || 7;
    load(view.ctx);
  });
  root.append(
    el(
      "div.card.analytics-head",
      {},
      el("div.card-head", {}, parts.title, el("label.analytics-period", {}, parts.periodLabel, parts.period), parts.updated),
      parts.simulated,
      parts.privacy,
      parts.empty,
    ),
    parts.figures,
    parts.charts,
  );
}

function activate(ctx) {
  view.ctx = ctx;
  load(ctx);
  clearInterval(timer);
  timer = setInterval(() => load(ctx), REFRESH_MS);
}

function deactivate() {
  clearInterval(timer);
  timer = null;
}

function reconnected(ctx) {
  if (view.root && !view.root.hidden) load(ctx);
}

async function load(ctx) {
  try {
    data = await getJSON(`/api/v1/analytics?days=${days}`);
    failure = null;
  } catch (error) {
    failure = error instanceof HttpError && error.body?.error ? error.body.error : error.message;
  }
  loadedAt = Date.now();
  view.dirty = true;
  ctx?.rerender();
}

function render() {
  // rebuilt only when new figures came or the language changed, not on every tick
  const signature = `${lang()}|${loadedAt}`;
  if (parts.signature === signature) return;
  parts.signature = signature;
  setText(parts.title, t("analytics.title"));
  setText(parts.periodLabel, t("analytics.period"));
  fill(
    parts.period,
    PERIODS.map((n) => el("option", { value: String(n), selected: n === days }, t(n === 1 ? "analytics.today" : "analytics.days", { n }))),
  );
  parts.period.value = String(days);
  setText(parts.updated, loadedAt ? t("analytics.updated", { time: clockTime(loadedAt / 1000) }) : "");
  const on = Boolean(data?.enabled);
  parts.simulated.hidden = !(on && data.simulated);
  setText(parts.simulated, t("analytics.simulated"));
  parts.privacy.hidden = !data;
  if (data) {
    const s = data.suppressed || { merged_hours: 0, suppressed_hours: 0, suppressed_cells: 0 };
    setText(
      parts.privacy,
      on
        ? t("analytics.privacy", { k: data.k, merged: s.merged_hours, dropped: s.suppressed_hours, cells: s.suppressed_cells })
        : t("analytics.privacy_off", { k: data.k }),
    );
  }
  let empty = "";
  if (failure) empty = t("analytics.failed", { error: failure });
  else if (!data) empty = t("analytics.loading");
  else if (!on) empty = `${t("analytics.off")} ${data.message || ""}`;
  else if (data.empty) empty = data.suppressed?.suppressed_hours ? t("analytics.too_few", { k: data.k }) : t("analytics.no_data");
  setText(parts.empty, empty);
  parts.empty.hidden = !empty;
  parts.empty.dataset.state = failure ? "failed" : !data ? "loading" : !on ? "off" : data.empty ? "no-data" : "";
  const show = on && !data.empty && !failure;
  parts.figures.hidden = !show;
  parts.charts.hidden = !show;
  if (!show) {
    fill(parts.figures);
    fill(parts.charts);
    return;
  }
  renderFigures(data.totals);
  renderCharts(data);
}

// --- numbers ----------------------------------------------------------------------------------

function count(value) {
  return typeof value === "number" ? Math.round(value).toLocaleString(lang() === "zh" ? "zh-CN" : "en-GB") : "–";
}

function percent(value) {
  return typeof value === "number" ? `${Math.round(value * 100)}%` : "–";
}

function decimal(value, digits = 1) {
  return typeof value === "number" ? value.toFixed(digits) : "–";
}

function bucket(range) {
  if (!range) return "–";
  if (range.high === null) return t("analytics.seconds_plus", { s: range.low });
  if (range.high === range.low + 1) return t("analytics.seconds", { s: range.low });
  return t("analytics.seconds_range", { low: range.low, high: range.high });
}

function renderFigures(totals) {
  const cards = [
    ["visitors", count(totals.visitors)],
    ["stopped", count(totals.stopped)],
    ["attraction", percent(totals.attraction)],
    ["holding_median", bucket(totals.holding_median)],
    ["holding_p90", bucket(totals.holding_p90)],
    ["occupancy_mean", decimal(totals.occupancy_mean, 2)],
    ["occupancy_peak", count(totals.occupancy_peak)],
    ["interactions", count(totals.interactions)],
  ];
  fill(
    parts.figures,
    cards.map(([key, value]) =>
      el("div.card.analytics-figure", { dataset: { figure: key } }, el("b", {}, value), el("span", {}, t(`analytics.fig.${key}`))),
    ),
  );
}

// --- charts -----------------------------------------------------------------------------------

function renderCharts(d) {
  // the exhibit's own dates (its time zone), as the server tells them: "2026-12-05" read as a UTC date
  const dayLabel = (date) =>
    new Date(`${date}T00:00:00Z`).toLocaleDateString(lang() === "zh" ? "zh-CN" : "en-GB", { month: "numeric", day: "numeric", timeZone: "UTC" });
  const perDay = columns(
    d.per_day.map((day) => ({
      label: dayLabel(day.date),
      value: day.attraction ?? 0,
      text: day.attraction === null ? "" : percent(day.attraction),
      title: `${dayLabel(day.date)}: ${percent(day.attraction)} · ${t("analytics.n_visitors", { n: count(day.visitors) })}`,
    })),
    { max: 1, every: Math.ceil(d.per_day.length / 10) },
  );
  const holding = columns(
    d.holding.map((group) => ({ label: group.label, value: group.visitors, text: group.visitors > 0 ? count(group.visitors) : "" })),
  );
  const hours = d.hour_of_day; // hours of the exhibit's day, in its time zone
  const occupancy = columns(
    hours.map((h) => ({
      label: String(h.hour),
      value: h.occupancy_mean,
      text: "",
      title: `${h.hour}:00 · ${t("analytics.fig.occupancy_mean")} ${decimal(h.occupancy_mean, 2)} · ${t("analytics.fig.occupancy_peak")} ${count(h.occupancy_peak)}`,
    })),
    { every: 3 },
  );
  const zones = rows(
    d.zones.map((z) => ({
      label: z.zone === "other" ? t("analytics.other") : z.zone,
      value: z.visitors,
      text: t("analytics.zone_note", { n: count(z.visitors), s: decimal(z.dwell_per_visitor_s) }),
    })),
  );
  const keyed = (items) =>
    rows(items.map((item) => ({ label: item.key === "other" ? t("analytics.other") : item.key, value: item.visitors, text: count(item.visitors) })));
  fill(
    parts.charts,
    chart("per_day", perDay, t("analytics.note.per_day")),
    chart("holding", holding, t("analytics.note.holding")),
    chart("occupancy", occupancy, t("analytics.note.occupancy", { zone: d.time_zone })),
    chart("zones", zones),
    chart("states", keyed(d.engaged_state)),
    chart("cues", keyed(d.engaged_cue)),
    chart("heatmap", heatmap(d.heatmap), t("analytics.note.heatmap")),
  );
}

function chart(key, body, note = "") {
  return el(
    "section.card.analytics-chart",
    { dataset: { chart: key } },
    el("h2", {}, t(`analytics.chart.${key}`)),
    body,
    note ? el("p.hint", {}, note) : null,
  );
}

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  for (const child of children) if (child) node.append(child);
  return node;
}

function label(x, y, text, anchor = "middle", cls = "axis") {
  const node = svg("text", { x, y, "text-anchor": anchor, class: cls });
  node.textContent = text;
  return node;
}

function nothing() {
  return el("p.empty", {}, t("analytics.nothing"));
}

/** Vertical bars, one per item, the label under each (every ``every``-th only when they are many). */
function columns(items, { max = null, every = 1 } = {}) {
  if (!items.length || !items.some((item) => item.value > 0)) return nothing();
  const width = 560;
  const height = 200;
  const top = 18;
  const bottom = 22;
  const top_ = max ?? Math.max(...items.map((item) => item.value));
  const step = width / items.length;
  const bar = Math.max(2, step * 0.72);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "analytics-svg", role: "img" });
  root.append(svg("line", { x1: 0, y1: height - bottom, x2: width, y2: height - bottom, class: "baseline" }));
  items.forEach((item, i) => {
    const h = top_ > 0 ? ((height - top - bottom) * item.value) / top_ : 0;
    const x = i * step + (step - bar) / 2;
    const rect = svg("rect", { x, y: height - bottom - h, width: bar, height: Math.max(h, 0), rx: 3, class: "bar" });
    const title = svg("title");
    title.textContent = item.title || `${item.label}: ${item.text}`;
    rect.append(title);
    root.append(rect);
    if (item.text && items.length <= 16) root.append(label(x + bar / 2, height - bottom - h - 5, item.text, "middle", "value"));
    if (i % every === 0) root.append(label(x + bar / 2, height - 6, item.label));
  });
  return root;
}

/** Horizontal bars with their names on the left: for zones, states and cues. */
function rows(items) {
  if (!items.length) return nothing();
  const width = 560;
  const line = 30;
  const left = 170;
  const right = 150;
  const height = items.length * line + 6;
  const top = Math.max(...items.map((item) => item.value)) || 1;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "analytics-svg", role: "img" });
  items.forEach((item, i) => {
    const y = i * line + 4;
    const w = ((width - left - right) * item.value) / top;
    root.append(label(left - 8, y + line / 2 + 1, shorten(item.label, 22), "end", "name"));
    root.append(svg("rect", { x: left, y, width: Math.max(w, 2), height: line - 8, rx: 3, class: "bar" }));
    root.append(label(left + w + 8, y + line / 2 + 1, item.text, "start", "value"));
  });
  return root;
}

function shorten(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

/** The floor grid: one square per cell, the brighter the more visitor-seconds were spent there. */
function heatmap(grid) {
  if (!grid.cells.length) return nothing();
  const rowsN = grid.cells.length;
  const colsN = Math.max(...grid.cells.map((row) => row.length));
  const size = Math.max(8, Math.min(40, Math.floor(540 / colsN), Math.floor(300 / rowsN)));
  const root = svg("svg", { viewBox: `0 0 ${colsN * size + 2} ${rowsN * size + 2}`, class: "analytics-svg heatmap", role: "img" });
  root.style.maxWidth = `${colsN * size + 2}px`;
  grid.cells.forEach((row, r) =>
    row.forEach((value, c) => {
      const share = grid.peak > 0 ? value / grid.peak : 0;
      const cell = svg("rect", {
        x: c * size + 1,
        y: r * size + 1,
        width: size - 2,
        height: size - 2,
        rx: 2,
        class: value > 0 ? "cell" : "cell none",
        "fill-opacity": value > 0 ? (0.15 + 0.85 * share).toFixed(3) : 1,
      });
      const title = svg("title");
      title.textContent = t("analytics.cell", { column: grid.column0 + c, row: grid.row0 + r, s: count(value) });
      cell.append(title);
      root.append(cell);
    }),
  );
  const box = el("div.heatmap-box", {}, root);
  if (grid.other > 0) box.append(el("p.hint", {}, t("analytics.heatmap_other", { s: count(grid.other) })));
  return box;
}
