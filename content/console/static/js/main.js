// The console's shell: sign-in, the header (PANIC always in reach), tabs, the live connection and
// one render per animation frame for whatever changed.

import { Live, login, logout, may, restoreSession, runCommand, session, HttpError } from "./api.js";
import { lang, loadDictionaries, setLang, t, translateStatic, word } from "./i18n.js";
import { el, fill, setText, toast, toggle, confirmDialog } from "./ui.js";
import show from "./views/show.js";
import safety from "./views/safety.js";
import health from "./views/health.js";
import site, { holderOf } from "./views/site.js";
import analytics from "./views/analytics.js";
import signals from "./views/signals.js";
import visitors from "./views/visitors.js";
import logView from "./views/log.js";
import audit from "./views/audit.js";

const VIEWS = [show, safety, health, site, analytics, signals, visitors, logView, audit];
const $ = (id) => document.getElementById(id);

/** What every view reads: the state topics, the exhibit, and how to act. */
const ctx = {
  state: new Map(),
  hello: null,
  live: null,
  online: false,
  may,
  session,
  command,
  askThenRun,
  rerender: () => schedule(),
};

let active = null;
let frame = 0;
let started = false;

async function boot() {
  await loadDictionaries();
  translateStatic();
  for (const button of document.querySelectorAll(".lang-switch")) {
    button.addEventListener("click", () => switchLanguage());
  }
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", onLogout);
  $("boot").hidden = true;
  const existing = await restoreSession().catch(() => null);
  if (existing) startApp();
  else showLogin("");
}

function switchLanguage() {
  setLang(lang() === "en" ? "zh" : "en");
  translateStatic();
  if (started) {
    buildChrome();
    for (const view of VIEWS) view.dirty = true;
    schedule();
  }
}

// --- signing in and out -----------------------------------------------------------------------

function showLogin(message) {
  $("app").hidden = true;
  $("login").hidden = false;
  setText($("login-form").querySelector(".login-error"), message);
  $("login-form").elements.user.focus();
}

async function onLogin(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = form.querySelector(".login-error");
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  setText(submit, t("login.busy"));
  try {
    await login(form.elements.user.value.trim(), form.elements.password.value);
    form.elements.password.value = "";
    setText(error, "");
    startApp();
  } catch (failure) {
    if (failure instanceof HttpError && failure.status === 401) setText(error, t("login.wrong"));
    else if (failure instanceof HttpError && failure.status === 429) setText(error, t("login.limited"));
    else setText(error, t("login.failed", { error: failure.message }));
  } finally {
    submit.disabled = false;
    setText(submit, t("login.submit"));
  }
}

async function onLogout() {
  ctx.live?.stop();
  await logout().catch(() => undefined);
  stopApp();
  showLogin("");
}

function sessionEnded() {
  stopApp();
  showLogin(t("login.expired"));
}

// --- the app ----------------------------------------------------------------------------------

function startApp() {
  $("login").hidden = true;
  $("app").hidden = false;
  started = true;
  ctx.state.clear();
  ctx.hello = null;
  ctx.live = new Live({ onEvent, onStatus, onClosedForGood: sessionEnded });
  mountViews();
  ctx.live.start();
  const wanted = location.hash.slice(1);
  activate(VIEWS.find((view) => view.id === wanted) || show);
  clearInterval(ctx.clock);
  ctx.clock = setInterval(tick, 1000);
}

/** Build every view for the signed-in role (a viewer's views never get command buttons). */
function mountViews() {
  buildChrome();
  const main = fill($("views"));
  for (const view of VIEWS) {
    view.unmount?.(ctx);
    view.root = el(`section.view.view-${view.id}`, { id: `view-${view.id}`, role: "tabpanel", hidden: true });
    main.append(view.root);
    view.mount(view.root, ctx);
    view.root.hidden = view !== active;
    view.dirty = true;
  }
}

function stopApp() {
  started = false;
  clearInterval(ctx.clock);
  for (const view of VIEWS) view.unmount?.(ctx);
  ctx.live = null;
}

/** The header, tabs and PANIC: rebuilt on sign-in and language change (role-aware: no PANIC for viewers). */
function buildChrome() {
  setText($("who"), t("header.signed_in", { user: session.user, role: word("role", session.role) }));
  $("studio-link").hidden = !may("admin"); // the curator's studio edits the exhibit file: admins only
  const tabs = fill($("tabs"));
  for (const view of VIEWS) {
    const tab = el(
      "button.tab",
      { role: "tab", type: "button", dataset: { tab: view.id }, onclick: () => activate(view) },
      t(`tab.${view.id}`),
    );
    tab.setAttribute("aria-selected", String(view === active));
    tabs.append(tab);
  }
  fill($("panic-reset-slot"));
  fill($("safe-leave-slot"));
  const panicSlot = fill($("panic-slot"));
  if (may("operator")) {
    // PANIC never asks: one press, everything safe.
    panicSlot.append(
      el(
        "button.panic",
        {
          type: "button",
          dataset: { cmd: "panic" },
          title: t("btn.panic_title"),
          onclick: () => command("panic", {}, t("btn.panic")),
        },
        t("btn.panic"),
      ),
    );
  }
  renderHeader();
}

function activate(view) {
  if (active && active !== view) active.deactivate?.(ctx);
  active = view;
  for (const other of VIEWS) {
    if (other.root) other.root.hidden = other !== view;
  }
  for (const tab of $("tabs").children) tab.setAttribute("aria-selected", String(tab.dataset.tab === view.id));
  history.replaceState(null, "", `#${view.id}`);
  view.activate?.(ctx);
  view.dirty = true;
  schedule();
}

// --- the live stream --------------------------------------------------------------------------

function onEvent(event) {
  const { topic, data } = event;
  if (topic === "hello") {
    ctx.hello = data;
    ctx.state.clear(); // the whole current state follows: forget topics a reload may have removed
    if (data.role && data.role !== session.role) {
      session.role = data.role; // the server's word wins: its role may have changed since sign-in
      mountViews();
      active?.activate?.(ctx);
    }
  } else if (topic === "reply") {
    return;
  } else if (topic === "error") {
    for (const view of VIEWS) view.onEvent?.(event, ctx); // a mistake in what a view sent: its own to mend
    return;
  } else if (topic === "log" || topic === "audit" || topic.startsWith("signal/")) {
    for (const view of VIEWS) view.onEvent?.(event, ctx);
  } else {
    ctx.state.set(topic, data);
  }
  for (const view of VIEWS) {
    if (!view.topics || view.topics.some((prefix) => topic.startsWith(prefix))) view.dirty = true;
  }
  schedule();
}

function onStatus(online) {
  ctx.online = online;
  if (online) for (const view of VIEWS) view.reconnected?.(ctx);
  schedule();
}

function schedule() {
  if (!frame) frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  if (!started) return;
  renderHeader();
  if (active?.dirty) {
    active.dirty = false;
    active.render(ctx);
  }
}

function tick() {
  // relative times ("3 s ago") age by themselves
  if (active) active.dirty = true;
  schedule();
}

function renderHeader() {
  const title = ctx.hello?.exhibit?.title;
  setText($("exhibit-title"), title ? title[lang()] || title.en || ctx.hello.exhibit.id : t("app.title"));
  toggle($("conn-dot"), "online", ctx.online);
  $("conn-dot").title = t(ctx.online ? "conn.online" : "conn.offline");
  const lost = started && !ctx.online && ctx.live && !ctx.live.stopped;
  $("conn-banner").hidden = !lost;
  if (lost && ctx.live.retryAt) {
    setText($("conn-retry"), t("conn.retry_in", { s: Math.max(0, Math.ceil((ctx.live.retryAt - Date.now()) / 1000)) }));
  }
  renderChips();
  const showState = ctx.state.get("show");
  const panicked = Boolean(showState?.panic);
  $("panic-banner").hidden = !panicked;
  const slot = $("panic-reset-slot");
  if (panicked && may("operator") && !slot.firstChild) {
    slot.append(
      el(
        "button.reset",
        {
          type: "button",
          dataset: { cmd: "reset" },
          onclick: () =>
            askThenRun("reset", {}, t("btn.reset_panic"), t("safety.confirm_panic_reset_title"),
              t("safety.confirm_panic_reset_text")),
        },
        t("btn.reset_panic"),
      ),
    );
  } else if (!panicked || !may("operator")) fill(slot);
  renderModeBanners();
}

/** Safe mode (after crashes: no show logic) and a backup that tracks another node: said on every page. */
function renderModeBanners() {
  const node = ctx.state.get("node");
  const safe = node?.mode === "safe-mode";
  $("safe-banner").hidden = !safe;
  if (safe) {
    const crashes = Number(node.crashes) || 0;
    setText($("safe-text"), crashes ? t("mode.safe_banner_crashes", { n: crashes }) : t("mode.safe_banner"));
  }
  const slot = $("safe-leave-slot");
  if (safe && may("operator") && !slot.firstChild) {
    slot.append(
      el(
        "button.reset",
        {
          type: "button",
          dataset: { cmd: "safe-mode/leave" },
          onclick: () =>
            askThenRun("safe-mode/leave", {}, t("mode.leave_safe"), t("mode.confirm_leave_title"),
              t("mode.confirm_leave_text")),
        },
        t("mode.leave_safe"),
      ),
    );
  } else if (!safe || !may("operator")) fill(slot);
  const tracking = node?.mode === "tracking";
  $("tracking-banner").hidden = !tracking;
  if (tracking) setText($("tracking-text"), t("mode.tracking_banner", { holder: holderOf(ctx) }));
}

function renderChips() {
  const chips = [];
  const safetyState = ctx.state.get("safety");
  const showState = ctx.state.get("show");
  if (showState?.panic) chips.push(el("span.chip.bad", {}, t("header.panic")));
  if (safetyState?.estop) chips.push(el("span.chip.bad", { dataset: { chip: "estop" } }, t("header.estop_latched")));
  if (showState?.locked) chips.push(el("span.chip.warn", {}, t("header.locked")));
  let problems = 0;
  for (const [topic, data] of ctx.state) {
    if (topic.startsWith("health/") && data?.status !== "ok" && data?.in_use !== false) problems += 1;
  }
  chips.push(
    problems
      ? el("button.chip.warn", { type: "button", onclick: () => activate(health) }, t("header.health_problems", { n: problems }))
      : el("span.chip.good", {}, t("header.health_ok")),
  );
  const box = $("chips");
  const signature = chips.map((chip) => chip.className + chip.textContent).join("|");
  if (box.dataset.signature !== signature) {
    box.dataset.signature = signature;
    fill(box, chips);
  }
}

// --- commands ---------------------------------------------------------------------------------

/** Run a command and say in a toast why it failed (the server's own bilingual sentence). */
async function command(name, params, label) {
  const reply = await runCommand(ctx.live, name, params);
  if (reply === null) toast(t("toast.no_reply", { action: label || name }), "error");
  else if (reply.status !== "ok") {
    const error = reply.error || (reply.code === "403" ? t("toast.forbidden") : reply.code);
    toast(t("toast.failed", { action: label || name, error }), "error");
  }
  return reply;
}

/** A command that must be confirmed in the page first (resetting the e-stop or PANIC). */
async function askThenRun(name, params, label, title, text) {
  if (await confirmDialog(title, text, label)) return command(name, params, label);
  return null;
}

boot().catch((error) => {
  document.getElementById("boot").textContent = `The console could not start / 控制台无法启动: ${error.message}`;
});
