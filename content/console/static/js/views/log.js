// Log: the exhibit's log lines as they happen, filtered by level and text.

import { clockTime, t, word } from "../i18n.js";
import { el, reconcile, setText } from "../ui.js";

const view = { id: "log", topics: [], mount, render, onEvent };
export default view;

const KEEP = 1000;
const LEVELS = ["debug", "info", "warning", "error", "critical"];
let parts = null;
let lines = [];
const seen = new Set();
let sequence = 0;

function mount(root) {
  parts = {
    levelLabel: el("span"),
    level: el("select.log-level", { name: "level" }),
    text: el("input.search", { type: "search", name: "filter", autocomplete: "off" }),
    follow: el("input", { type: "checkbox", name: "follow", checked: true }),
    followLabel: el("span"),
    clear: el("button", { type: "button" }),
    count: el("span.hint"),
    list: el("ol.log-lines"),
    empty: el("p.empty"),
  };
  for (const level of ["", "info", "warning", "error"]) parts.level.append(el("option", { value: level }));
  parts.level.addEventListener("change", () => rerender());
  parts.text.addEventListener("input", () => rerender());
  parts.clear.addEventListener("click", () => {
    lines = [];
    rerender();
  });
  root.append(
    el("div.toolbar.log-tools", {},
      el("label", {}, parts.levelLabel, parts.level),
      parts.text,
      el("label.check", {}, parts.follow, parts.followLabel),
      parts.clear,
      parts.count),
    el("div.card.log-card", {}, parts.list, parts.empty),
  );
}

function rerender() {
  view.dirty = true;
  view.render();
}

function onEvent(event) {
  if (event.topic !== "log" || !event.data) return;
  const line = event.data;
  // the server replays recent lines on every (re)connection: keep each line once
  const key = `${line.t}|${line.logger}|${line.message}`;
  if (seen.has(key)) return;
  seen.add(key);
  lines.push({ ...line, seq: sequence++, key });
  if (lines.length > KEEP) {
    for (const old of lines.splice(0, lines.length - KEEP)) seen.delete(old.key);
  }
  view.dirty = true;
}

function render() {
  setText(parts.levelLabel, t("log.level"));
  for (const option of parts.level.options) {
    setText(option, option.value ? t("log.level_min", { level: word("log.level", option.value) }) : t("log.level_all"));
  }
  parts.text.placeholder = t("log.filter");
  setText(parts.followLabel, t("log.follow"));
  setText(parts.clear, t("log.clear"));
  const least = LEVELS.indexOf(parts.level.value);
  const query = parts.text.value.trim().toLowerCase();
  const shown = lines.filter(
    (line) =>
      (least < 0 || LEVELS.indexOf(line.level) >= least) &&
      (!query || `${line.logger} ${line.message}`.toLowerCase().includes(query)),
  );
  setText(parts.count, t("log.count", { shown: shown.length, total: lines.length }));
  parts.empty.hidden = shown.length > 0;
  setText(parts.empty, t("log.empty"));
  const box = parts.list.parentElement;
  reconcile(
    parts.list,
    shown,
    (line) => line.seq,
    (line) => {
      const row = el(`li.log-line.level-${line.level}`, { dataset: { level: line.level } });
      row.levelWord = el("span.log-level-word");
      const message = typeof line.message === "string" ? line.message : JSON.stringify(line.message);
      row.append(
        el("span.log-time.mono", {}, clockTime(line.t)),
        row.levelWord,
        el("span.log-logger", {}, line.logger),
        el("span.log-message", {}, message),
      );
      return row;
    },
    (row, line) => setText(row.levelWord, word("log.level", line.level)),
  );
  if (parts.follow.checked) box.scrollTop = box.scrollHeight;
}
