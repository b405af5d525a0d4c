// Small DOM helpers shared by the views: element building, keyed updates that keep focus and
// scroll, toasts and the in-page confirmation dialog.

import { t } from "./i18n.js";

/** ``el("button.big", {onclick}, "GO")``: a tag with classes, properties/attributes and children. */
export function el(spec, props = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const node = document.createElement(tag || "div");
  if (classes.length) node.className = classes.join(" ");
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
}

/** Replace a node's children (text or nodes). */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/**
 * Keep ``container``'s children in step with ``items`` by key: new keys are created, known ones
 * updated in place (an input being typed in keeps its focus and text), gone ones removed.
 */
export function reconcile(container, items, key, create, update) {
  const existing = new Map();
  for (const child of container.children) {
    if (child.dataset.key !== undefined) existing.set(child.dataset.key, child);
  }
  let previous = null;
  for (const item of items) {
    const id = String(key(item));
    let node = existing.get(id);
    if (node) existing.delete(id);
    else {
      node = create(item);
      node.dataset.key = id;
    }
    update(node, item);
    const expected = previous ? previous.nextElementSibling : container.firstElementChild;
    if (expected !== node) container.insertBefore(node, expected);
    previous = node;
  }
  for (const node of existing.values()) node.remove();
}

/** Set a node's text only when it changed (no flicker, no lost selection). */
export function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) node.textContent = value;
}

export function toggle(node, className, on) {
  node.classList.toggle(className, Boolean(on));
}

// --- toasts -----------------------------------------------------------------------------------

export function toast(message, kind = "info", seconds = kind === "error" ? 8 : 3) {
  const box = document.getElementById("toasts");
  const note = el(`div.toast.${kind}`, { role: kind === "error" ? "alert" : "status" }, message);
  note.addEventListener("click", () => note.remove());
  box.append(note);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => note.remove(), seconds * 1000);
}

// --- confirmation -----------------------------------------------------------------------------

/**
 * Ask in the page (not window.confirm: it blocks the live view and tests cannot drive it).
 * Resolves true when the operator confirms.
 */
export function confirmDialog(title, text, confirmLabel) {
  const dialog = document.getElementById("confirm");
  fill(dialog.querySelector(".confirm-title"), title);
  fill(dialog.querySelector(".confirm-text"), text);
  const yes = dialog.querySelector("[data-answer=yes]");
  const no = dialog.querySelector("[data-answer=no]");
  fill(yes, confirmLabel || t("btn.confirm"));
  fill(no, t("btn.cancel"));
  return new Promise((resolve) => {
    const finish = (answer) => {
      yes.removeEventListener("click", onYes);
      no.removeEventListener("click", onNo);
      dialog.removeEventListener("cancel", onNo);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const onYes = () => finish(true);
    const onNo = (event) => {
      event?.preventDefault?.();
      finish(false);
    };
    yes.addEventListener("click", onYes);
    no.addEventListener("click", onNo);
    dialog.addEventListener("cancel", onNo);
    dialog.showModal();
    no.focus(); // the safe answer is the default one
  });
}

// --- values -----------------------------------------------------------------------------------

/** A signal or variable value as text: numbers rounded for reading, booleans and nothing in words. */
export function showValue(value) {
  if (value === null || value === undefined) return t("value.none");
  if (typeof value === "boolean") return t(value ? "value.true" : "value.false");
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    return Math.abs(value) >= 100 ? value.toFixed(1) : value.toFixed(3);
  }
  if (typeof value === "string") return value;
  const text = JSON.stringify(value);
  return text.length > 160 ? `${text.slice(0, 157)}…` : text;
}
