// Health: every sensor, device and service of the health model (the MQTT link and broker among
// them), with status in colour and words, the reason, since when, the last message and the figures.

import { relative, t, word } from "../i18n.js";
import { el, fill, reconcile, setText, showValue } from "../ui.js";

const view = { id: "health", topics: ["health/"], mount, render };
export default view;

const KIND_ORDER = { service: 0, sensor: 1, device: 2 };
const CORE = new Set(["kind", "status", "reason", "since", "age", "in_use"]);
let parts = null;

function mount(root) {
  parts = { summary: el("p.health-summary"), grid: el("div.health-grid") };
  root.append(parts.summary, parts.grid);
}

function render(ctx) {
  const components = [...ctx.state.entries()]
    .filter(([topic]) => topic.startsWith("health/"))
    .map(([topic, data]) => ({ name: topic.slice(7), data: data || {} }))
    .sort(
      (a, b) =>
        (KIND_ORDER[a.data.kind] ?? 9) - (KIND_ORDER[b.data.kind] ?? 9) || a.name.localeCompare(b.name),
    );
  const counts = { ok: 0, degraded: 0, offline: 0 };
  for (const { data } of components) if (data.in_use !== false) counts[data.status] = (counts[data.status] || 0) + 1;
  setText(parts.summary, components.length ? t("health.summary", counts) : t("health.none"));
  parts.summary.className = `health-summary ${counts.offline ? "bad" : counts.degraded ? "warn" : "good"}`;
  const now = Date.now() / 1000;
  reconcile(parts.grid, components, (c) => c.name, createCard, (card, c) => updateCard(card, c, now));
}

function createCard({ name }) {
  const card = el("div.card.health-card", { dataset: { component: name } });
  card.kind = el("span.badge.quiet");
  card.status = el("span.status");
  card.reason = el("p.reason");
  card.since = el("p.since");
  card.seen = el("p.seen");
  card.figures = el("dl.figures");
  card.append(
    el("div.card-head", {}, el("h3", {}, name), card.kind, card.status),
    card.reason,
    card.since,
    card.seen,
    card.figures,
  );
  return card;
}

function updateCard(card, { data }, now) {
  const status = data.in_use === false ? "unused" : data.status || "offline";
  card.className = `card health-card status-${status}`;
  card.dataset.status = status;
  setText(card.kind, word("health.kind", data.kind || "service"));
  setText(card.status, word("health.status", status));
  card.status.className = `status ${status}`;
  setText(card.reason, data.reason ? t("health.reason", { reason: data.reason }) : "");
  card.reason.hidden = !data.reason;
  setText(card.since, typeof data.since === "number" ? t("health.since", { rel: relative(data.since - now) }) : "");
  if (typeof data.age === "number") {
    setText(card.seen, data.age < 0 ? t("health.never_seen") : t("health.last_seen", { rel: relative(-data.age) }));
    card.seen.hidden = false;
  } else {
    card.seen.hidden = true;
  }
  const figures = Object.entries(data).filter(([key]) => !CORE.has(key));
  const signature = JSON.stringify(figures);
  if (card.figures.dataset.signature !== signature) {
    card.figures.dataset.signature = signature;
    fill(card.figures, figures.flatMap(([key, value]) => [el("dt", {}, key), el("dd", {}, showValue(value))]));
  }
}
