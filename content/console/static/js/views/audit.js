// Audit: every control action (who, what, when, from where, and how it ended), newest first:
// the recent ones from GET /api/v1/audit, then each new one as it happens.

import { getJSON } from "../api.js";
import { clockTime, t, word } from "../i18n.js";
import { el, fill, reconcile, setText } from "../ui.js";

const view = { id: "audit", topics: [], mount, render, activate, onEvent, reconnected };
export default view;

const KEEP = 500;
let parts = null;
let entries = [];
const seen = new Set();
let loaded = false;

function mount(root) {
  parts = { head: el("tr"), body: el("tbody"), empty: el("p.empty") };
  root.append(
    el("div.card.audit-card", {}, el("table.audit", {}, el("thead", {}, parts.head), parts.body), parts.empty),
  );
}

function keyOf(entry) {
  return `${entry.t}|${entry.who}|${entry.via}|${entry.action}|${JSON.stringify(entry.params ?? entry.detail ?? "")}`;
}

function add(entry) {
  const key = keyOf(entry);
  if (seen.has(key)) return;
  seen.add(key);
  entries.push({ ...entry, key });
  entries.sort((a, b) => b.t - a.t);
  for (const old of entries.splice(KEEP)) seen.delete(old.key);
}

async function activate(ctx) {
  if (loaded) return;
  try {
    const data = await getJSON("/api/v1/audit?limit=200");
    for (const entry of data.entries || []) add(entry);
    loaded = true;
    parts.empty.dataset.failed = "";
  } catch {
    parts.empty.dataset.failed = "yes";
  }
  view.dirty = true;
  ctx.rerender();
}

function reconnected(ctx) {
  loaded = false; // actions taken while we were away are only in the server's list
  if (view.root && !view.root.hidden) activate(ctx);
}

function onEvent(event) {
  if (event.topic !== "audit" || !event.data) return;
  add(event.data);
  view.dirty = true;
}

function render() {
  const columns = ["time", "who", "via", "from", "action", "result"];
  const signature = columns.map((c) => t(`audit.${c}`)).join("|");
  if (parts.head.dataset.signature !== signature) {
    parts.head.dataset.signature = signature;
    fill(parts.head, columns.map((c) => el("th", {}, t(`audit.${c}`))));
  }
  parts.empty.hidden = entries.length > 0;
  setText(parts.empty, parts.empty.dataset.failed ? t("audit.failed_load") : t("audit.empty"));
  reconcile(
    parts.body,
    entries,
    (entry) => entry.key,
    (entry) => {
      const params = entry.params && Object.keys(entry.params).length ? ` ${JSON.stringify(entry.params)}` : "";
      const detail = entry.detail ? ` (${entry.detail})` : "";
      const row = el(`tr.${entry.ok ? "ok" : "failed"}`, { dataset: { action: entry.action } });
      row.cells_ = columns.map((c) => el(c === "time" || c === "from" || c === "action" ? "td.mono" : "td"));
      row.append(...row.cells_);
      setText(row.cells_[2], entry.via ?? "");
      setText(row.cells_[3], entry.from ?? "");
      setText(row.cells_[4], `${entry.action}${params}${detail}`);
      return row;
    },
    (row, entry) => {
      // words that follow the language: the time, the role and the result
      setText(row.cells_[0], clockTime(entry.t));
      setText(row.cells_[1], `${entry.who}${entry.role ? ` · ${word("role", entry.role)}` : ""}`);
      setText(row.cells_[5], entry.ok ? t("audit.ok") : `${t("audit.failed")}: ${entry.error ?? ""}`);
    },
  );
}
