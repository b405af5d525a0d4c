// Simplified Chinese and English for every string the console shows. The choice is remembered per
// browser (localStorage); the first visit follows the browser's language.

const STORAGE_KEY = "exhibit.console.lang";
export const LANGS = ["en", "zh"];
const dictionaries = {};
let current = "en";

export async function loadDictionaries() {
  await Promise.all(
    LANGS.map(async (lang) => {
      const response = await fetch(`/static/i18n/${lang}.json`, { credentials: "same-origin" });
      dictionaries[lang] = await response.json();
    }),
  );
  current = preferredLang();
  applyLangAttributes();
}

function preferredLang() {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (LANGS.includes(saved)) return saved;
  } catch {
    // storage may be disabled (private mode on some tablets): fall back to the browser's language
  }
  const wanted = navigator.languages?.length ? navigator.languages : [navigator.language || "en"];
  return wanted.some((tag) => String(tag).toLowerCase().startsWith("zh")) ? "zh" : "en";
}

export function lang() {
  return current;
}

export function setLang(next) {
  if (!LANGS.includes(next)) return;
  current = next;
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // not remembered, but still switched
  }
  applyLangAttributes();
}

function applyLangAttributes() {
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  document.title = t("app.title");
}

/** The sentence for ``key`` in the current language, with ``{name}`` replaced from ``vars``. */
export function t(key, vars = {}) {
  const text = dictionaries[current]?.[key] ?? dictionaries.en?.[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/** Fill every element carrying data-i18n (text), data-i18n-placeholder, data-i18n-title or aria-label. */
export function translateStatic(root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-placeholder]")) {
    node.placeholder = t(node.dataset.i18nPlaceholder);
  }
  for (const node of root.querySelectorAll("[data-i18n-title]")) node.title = t(node.dataset.i18nTitle);
  for (const node of root.querySelectorAll("[data-i18n-label]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nLabel));
  }
}

/** A time as "in 3 hours" / "3 小时后", relative to now (``seconds`` may be negative: the past). */
export function relative(seconds) {
  const format = new Intl.RelativeTimeFormat(current === "zh" ? "zh-CN" : "en", { numeric: "auto" });
  const size = Math.abs(seconds);
  if (size < 60) return format.format(Math.round(seconds), "second");
  if (size < 3600) return format.format(Math.round(seconds / 60), "minute");
  if (size < 86400 * 2) return format.format(Math.round(seconds / 3600), "hour");
  return format.format(Math.round(seconds / 86400), "day");
}

/** A wall-clock time (UNIX seconds) as the operator reads it: time today, date and time otherwise. */
export function clockTime(unixSeconds, withSeconds = true) {
  const date = new Date(unixSeconds * 1000);
  const locale = current === "zh" ? "zh-CN" : "en-GB";
  const options = { hour: "2-digit", minute: "2-digit", ...(withSeconds ? { second: "2-digit" } : {}) };
  if (new Date().toDateString() !== date.toDateString()) {
    Object.assign(options, { month: "short", day: "numeric" });
  }
  return date.toLocaleString(locale, options);
}

/** A role, a health status or a component kind in the current language. */
export function word(group, value) {
  const key = `${group}.${value}`;
  const text = t(key);
  return text === key ? String(value) : text;
}
