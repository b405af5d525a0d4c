// Simulation controls (a --simulate run only; the server refuses them on a live show): pin any input to a
// value (fader, number, toggle, text), fire events, add simulated visitors and pose them (drag them across
// the floor, raise their hands), hide the recorded ones, and pretend the schedule's clock shows another time.

import { getJSON, runCommand } from "../api.js";
import { t } from "../i18n.js";
import { el, fill, reconcile, setText, showValue, toast, toggle } from "../ui.js";

const pane = { id: "simulate", mount, activate, deactivate, translate };
export default pane;

const REFRESH_MS = 1000;
let parts = null;
let studio = null;
let state = null;
let timer = 0;
const sending = new Map(); // a command key -> {busy, next}: one in flight per control, the latest value next

function mount(root, shared) {
  studio = shared;
  parts = {
    root,
    note: el("p.hint"),
    inputsTitle: el("h2"),
    inputs: el("ul.sim-list", { id: "sim-inputs" }),
    eventsTitle: el("h2"),
    events: el("ul.sim-list", { id: "sim-events" }),
    visitorsTitle: el("h2"),
    visitors: el("div", { id: "sim-visitors" }),
    clockTitle: el("h2"),
    clockHint: el("p.hint"),
    clockInput: el("input", { type: "datetime-local", step: "1", id: "sim-clock" }),
    clockSet: el("button", { type: "button", id: "sim-clock-set", onclick: setClock }),
    clockClear: el("button", { type: "button", id: "sim-clock-clear", onclick: () => command("sim/clock", { at: null }) }),
    clockNow: el("span.hint", { id: "sim-clock-now" }),
  };
  root.append(
    parts.note,
    el("div.card", {}, parts.visitorsTitle, parts.visitors),
    el("div.card", {}, parts.inputsTitle, parts.inputs),
    el("div.card", {}, parts.eventsTitle, parts.events),
    el("div.card", {}, parts.clockTitle, parts.clockHint,
      el("div.upload-row", {}, parts.clockInput, parts.clockSet, parts.clockClear, parts.clockNow)),
  );
  translate();
}

function translate() {
  if (!parts) return;
  setText(parts.note, t("studio.sim_only"));
  setText(parts.inputsTitle, t("studio.inputs"));
  setText(parts.eventsTitle, t("studio.events"));
  setText(parts.visitorsTitle, t("studio.visitors"));
  setText(parts.clockTitle, t("studio.clock"));
  setText(parts.clockSet, t("studio.clock_set"));
  setText(parts.clockClear, t("studio.clock_clear"));
  if (state) render();
}

function activate() {
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
}

function deactivate() {
  clearInterval(timer);
}

async function refresh() {
  const fresh = await getJSON("/api/v1/studio/simulation").catch(() => null);
  if (!fresh) return;
  state = fresh;
  render();
}

async function command(name, params) {
  const reply = await runCommand(studio.live, name, params);
  if (!reply || reply.status !== "ok") {
    toast(reply?.error || t("studio.failed"), "error");
    return null;
  }
  refresh();
  return reply.data;
}

/** Send the latest value of a control, one command in flight per control (a dragged fader sends many). */
function send(key, name, params) {
  const slot = sending.get(key) || { busy: false, next: null };
  sending.set(key, slot);
  slot.next = params;
  if (slot.busy) return;
  (async () => {
    slot.busy = true;
    while (slot.next) {
      const next = slot.next;
      slot.next = null;
      const reply = await runCommand(studio.live, name, next);
      if (reply && reply.status !== "ok") toast(reply.error, "error");
    }
    slot.busy = false;
  })();
}

function render() {
  parts.note.hidden = state.simulated;
  for (const card of parts.root.querySelectorAll(".card")) card.hidden = !state.simulated;
  if (!state.simulated) return;
  const inputs = state.controls.filter((c) => c.control !== "button");
  reconcile(parts.inputs, inputs, (c) => c.name, createInput, updateInput);
  const events = state.controls.filter((c) => c.control === "button");
  reconcile(parts.events, events, (c) => c.name, createEvent, () => {});
  reconcile(parts.visitors, Object.entries(state.pose), ([sensor]) => sensor, createStage, updateStage);
  const clock = state.clock;
  parts.clockHint.textContent = t("studio.clock_hint", { tz: clock.timezone });
  setText(parts.clockNow, clock.at ? t("studio.clock_now", { time: clock.at }) : "");
}

// --- inputs -----------------------------------------------------------------------------------------

function createInput(control) {
  const row = el("li.sim-row", { dataset: { signal: control.name } });
  const value = el("span.value.mono");
  const release = el("button.release", { type: "button", onclick: () => command("sim/input", { signal: control.name, value: null }) });
  let widget;
  const pin = (v) => send(control.name, "sim/input", { signal: control.name, value: v });
  if (control.control === "fader") {
    const [low, high] = control.range;
    const step = control.type === "int" ? 1 : (high - low) / 1000;
    widget = el("input", { type: "range", min: low, max: high, step, "aria-label": control.name });
    widget.addEventListener("input", () => pin(control.type === "int" ? Math.round(Number(widget.value)) : Number(widget.value)));
  } else if (control.control === "toggle") {
    widget = el("input", { type: "checkbox", "aria-label": control.name });
    widget.addEventListener("change", () => pin(widget.checked));
  } else if (control.control === "number") {
    widget = el("input", { type: "number", step: control.type === "int" ? 1 : "any", "aria-label": control.name });
    widget.addEventListener("change", () => pin(control.type === "int" ? Math.round(Number(widget.value)) : Number(widget.value)));
  } else {
    widget = el("input", { type: "text", "aria-label": control.name });
    widget.addEventListener("change", () => pin(widget.value));
  }
  row.append(el("span.name", { title: control.meaning }, control.name), widget, value, release);
  row.parts = { widget, value, release };
  updateInput(row, control);
  return row;
}

function updateInput(row, control) {
  const overridden = Object.hasOwn(state.overrides, control.name);
  toggle(row, "overridden", overridden);
  const { widget, value, release } = row.parts;
  setText(value, showValue(control.value));
  setText(release, t("studio.release"));
  release.hidden = !overridden;
  if (document.activeElement === widget || sending.get(control.name)?.busy) return; // the curator is moving it
  if (widget.type === "checkbox") widget.checked = Boolean(control.value);
  else if (control.value !== null && control.value !== undefined) widget.value = String(control.value);
}

function createEvent(control) {
  return el("li.sim-row", { dataset: { signal: control.name } },
    el("span.name", { title: control.meaning }, control.name),
    el("button.fire", { type: "button", onclick: () => command("sim/event", { signal: control.name }) }, t("studio.fire")));
}

// --- simulated visitors -----------------------------------------------------------------------------

function createStage([sensor]) {
  const box = el("div.visitor-stage", { dataset: { sensor } });
  const mute = el("input", { type: "checkbox", dataset: { role: "mute" } });
  mute.addEventListener("change", () => command("sim/recording", { sensor, muted: mute.checked }));
  const add = el("button.primary", {
    type: "button",
    dataset: { role: "add" },
    // side by side, not on top of each other: left, middle, right, then again a little nearer
    onclick: () => {
      const n = state.pose[sensor]?.visitors.length ?? 0;
      command("sim/visitor/add", { sensor, x: 0.3 + 0.2 * (n % 3), y: 0.75 + 0.05 * Math.floor(n / 3), left_hand: 0, right_hand: 0 });
    },
  });
  const floor = el("div.stage", { dataset: { role: "floor" } });
  const list = el("div.visitor-list");
  box.append(el("h3", {}, sensor), el("div.upload-row", {}, el("label", {}, mute, el("span.mute-label")), add), floor, list);
  box.parts = { mute, add, floor, list, sensor };
  updateStage(box, [sensor, state.pose[sensor]]);
  return box;
}

function updateStage(box, [sensor, info]) {
  const { mute, add, floor, list } = box.parts;
  mute.checked = info.muted;
  setText(box.querySelector(".mute-label"), t("studio.mute_recording"));
  setText(add, t("studio.add_visitor"));
  reconcile(floor, info.visitors, (v) => String(v.id), (v) => createDot(sensor, v, floor), placeDot);
  reconcile(list, info.visitors, (v) => String(v.id), (v) => createVisitor(sensor, v), updateVisitor);
}

function createDot(sensor, visitor, floor) {
  const dot = el("div.dot", { dataset: { visitor: visitor.id }, title: `#${visitor.id}` }, String(visitor.id));
  dot.addEventListener("pointerdown", (event) => {
    dot.setPointerCapture(event.pointerId);
    dot.dragging = true;
  });
  dot.addEventListener("pointermove", (event) => {
    if (!dot.dragging) return;
    const box = floor.getBoundingClientRect();
    const x = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
    const y = Math.min(1, Math.max(0, (event.clientY - box.top) / box.height));
    dot.style.left = `${x * 100}%`;
    dot.style.top = `${y * 100}%`;
    send(`visitor-${sensor}-${visitor.id}-xy`, "sim/visitor/pose", { sensor, id: visitor.id, x, y });
  });
  const stop = () => {
    dot.dragging = false;
  };
  dot.addEventListener("pointerup", stop);
  dot.addEventListener("pointercancel", stop);
  placeDot(dot, visitor);
  return dot;
}

function placeDot(dot, visitor) {
  if (dot.dragging) return;
  dot.style.left = `${visitor.x * 100}%`;
  dot.style.top = `${visitor.y * 100}%`;
}

function createVisitor(sensor, visitor) {
  const card = el("div.visitor", { dataset: { visitor: visitor.id } });
  const slider = (key) => {
    const input = el("input", { type: "range", min: 0, max: 1, step: 0.01, dataset: { pose: key } });
    input.addEventListener("input", () =>
      send(`visitor-${sensor}-${visitor.id}-${key}`, "sim/visitor/pose", { sensor, id: visitor.id, [key]: Number(input.value) }));
    return input;
  };
  const sliders = { left_hand: slider("left_hand"), right_hand: slider("right_hand"), x: slider("x"), y: slider("y") };
  const remove = el("button.remove", { type: "button", onclick: () => command("sim/visitor/remove", { sensor, id: visitor.id }) });
  const labels = {};
  for (const key of Object.keys(sliders)) labels[key] = el("span");
  card.append(
    el("div.upload-row", {}, el("b", {}, `#${visitor.id}`), remove),
    ...Object.entries(sliders).map(([key, input]) => el("label", {}, labels[key], input)),
  );
  card.parts = { sliders, labels, remove };
  updateVisitor(card, visitor);
  return card;
}

const POSE_LABELS = { left_hand: "studio.left_hand", right_hand: "studio.right_hand", x: "studio.position_x", y: "studio.position_y" };

function updateVisitor(card, visitor) {
  setText(card.parts.remove, t("studio.remove"));
  for (const [key, input] of Object.entries(card.parts.sliders)) {
    setText(card.parts.labels[key], t(POSE_LABELS[key]));
    if (document.activeElement !== input) input.value = String(visitor[key]);
  }
}

// --- the schedule's clock ---------------------------------------------------------------------------

function setClock() {
  const value = parts.clockInput.value;
  if (!value) return;
  command("sim/clock", { at: value.length === 16 ? `${value}:00` : value });
}
