// The curator's studio: the exhibit file in an editor, checked by the server's own checker as it is typed
// (one check at a time, always of the latest text), saved only when it has no problems; beside it the
// preview, the simulation controls, the inspector, the history and the assets. The unsaved draft is kept
// in this tab (sessionStorage) and comes back after a reload; when the session ends the page stays.

import { HttpError, Live, getJSON, postJSON, restoreSession, session } from "../api.js";
import { lang, loadDictionaries, setLang, t, translateStatic } from "../i18n.js";
import { createEditor } from "../../vendor/codemirror/editor.js";
import { el, fill, setText, toast, toggle } from "../ui.js";
import preview from "./preview.js";
import simulate from "./simulate.js";
import inspector from "./inspector.js";
import history from "./history.js";
import { inUtf16, utf16Column } from "./columns.js";

const PANES = [preview, simulate, inspector, history];
const $ = (id) => document.getElementById(id);

/** What the panes share. */
export const studio = {
  file: null, // {path, text, sha256, locked, simulate, exhibit, reload}
  live: null,
  editor: null,
  state: new Map(),
  reloadFile,
  setDraft: (text) => {
    studio.editor.setText(text);
    draftChanged(text);
  },
};

const check = { running: false, queued: null, shown: null, problems: [], ok: false, typedAt: null };
let saving = false;
let activePane = null;
let sessionEnded = false;
let leaving = false; // going to sign in again in this tab: the draft stays here, no need to warn
const DRAFT_EVERY_MS = 500;
const draft = { timer: null, offered: null }; // offered: a stored draft older than the file, not yet taken

async function boot() {
  await loadDictionaries();
  translateStatic();
  for (const button of document.querySelectorAll(".lang-switch")) {
    button.addEventListener("click", () => {
      setLang(lang() === "en" ? "zh" : "en");
      translateStatic();
      buildTabs();
      if (studio.file) showMode();
      for (const pane of PANES) pane.translate?.();
      showCheck();
    });
  }
  $("boot").hidden = true;
  const existing = await restoreSession().catch(() => null);
  if (!existing || session.role !== "admin") {
    $("signed-out").hidden = false;
    return;
  }
  try {
    studio.file = await getJSON("/api/v1/studio/file");
  } catch (error) {
    $("signed-out").hidden = false;
    toast(error.message, "error");
    return;
  }
  $("app").hidden = false;
  setText($("exhibit-title"), studio.file.exhibit);
  showMode();
  const schema = await getJSON("/api/v1/studio/schema").catch(() => null);
  studio.editor = createEditor($("editor"), {
    doc: studio.file.text,
    schema,
    onChange: draftChanged,
    onSave: () => save(),
    label: "exhibit.yaml",
  });
  $("save").addEventListener("click", () => save());
  const stored = readDraft();
  let restored = false;
  if (stored && stored.text !== studio.file.text) {
    if (stored.base === studio.file.sha256) {
      studio.editor.setText(stored.text); // the file it was written on is still the file: take it back
      restored = true;
    } else {
      draft.offered = stored; // the file changed since: show the file, offer the draft
      $("draft-offer").hidden = false;
    }
  } else if (stored) {
    forgetDraft();
  }
  $("draft-restore").addEventListener("click", restoreOfferedDraft);
  $("draft-dismiss").addEventListener("click", () => {
    draft.offered = null;
    $("draft-offer").hidden = true;
    keepDraft();
  });
  $("sign-in-again").addEventListener("click", () => {
    keepDraft();
    leaving = true;
  });
  addEventListener("pagehide", keepDraft);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") keepDraft();
  });
  addEventListener("beforeunload", (event) => {
    if (leaving || !studio.editor || studio.editor.getText() === studio.file.text) return;
    keepDraft();
    event.preventDefault();
    event.returnValue = "";
  });
  studio.live = new Live({
    onEvent: (event) => {
      if (event.topic === "show" || event.topic === "hello") studio.state.set(event.topic, event.data);
      if (event.topic === "show") showLock();
      for (const pane of PANES) pane.onEvent?.(event);
    },
    onStatus: (online) => toggle($("conn-dot"), "online", online),
    onClosedForGood: sessionOver,
  });
  studio.live.start();
  for (const pane of PANES) {
    const root = el("div.studio-pane", { id: `pane-${pane.id}`, hidden: true });
    $("studio-panes").append(root);
    pane.mount(root, studio);
  }
  buildTabs();
  activate(PANES[0]);
  draftChanged(studio.editor.getText()); // the file as it is on disk (or the draft): its problems at once
  if (restored) toast(t("studio.draft_restored"), "info", 6);
}

/** The session ended (the exhibit restarted, a sign-out elsewhere): keep the page and the draft, stop saving. */
function sessionOver() {
  sessionEnded = true;
  keepDraft();
  $("session-ended").hidden = false;
  showCheck();
}

// --- the draft, kept in this tab ---------------------------------------------------------------------

function draftKey() {
  return `studio.draft:${studio.file.exhibit}:${studio.file.path}`;
}

/** The stored draft, {text, base}: `base` is the sha256 of the file it was written on. */
function readDraft() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(draftKey()));
    return stored && typeof stored.text === "string" ? stored : null;
  } catch {
    return null;
  }
}

function keepDraft() {
  clearTimeout(draft.timer);
  draft.timer = null;
  if (!studio.editor || !studio.file) return;
  const text = studio.editor.getText();
  if (text === studio.file.text && draft.offered) return; // nothing new: the offered draft stays stored
  try {
    if (text === studio.file.text) sessionStorage.removeItem(draftKey());
    else sessionStorage.setItem(draftKey(), JSON.stringify({ text, base: studio.file.sha256 }));
  } catch {
    // storage off or full: the warning before leaving still guards the draft
  }
}

function keepDraftSoon() {
  draft.timer ??= setTimeout(keepDraft, DRAFT_EVERY_MS);
}

function forgetDraft() {
  clearTimeout(draft.timer);
  draft.timer = null;
  draft.offered = null;
  $("draft-offer").hidden = true;
  try {
    sessionStorage.removeItem(draftKey());
  } catch {
    // storage off
  }
}

/** The curator chose the draft over the changed file: saving it goes against the file as it is now. */
function restoreOfferedDraft() {
  const offered = draft.offered;
  if (!offered) return;
  draft.offered = null;
  $("draft-offer").hidden = true;
  studio.setDraft(offered.text);
  keepDraft(); // stored again, now based on the current file
  toast(t("studio.draft_restored"), "info", 6);
}

function showMode() {
  const chip = $("mode-chip");
  setText(chip, t(studio.file.simulate ? "studio.simulated" : "studio.live"));
  toggle(chip, "warn", !studio.file.simulate);
}

function showLock() {
  const locked = Boolean(studio.state.get("show")?.locked);
  studio.file.locked = locked;
  $("lock-chip").hidden = !locked;
  showCheck();
}

function buildTabs() {
  const tabs = $("studio-tabs");
  fill(
    tabs,
    PANES.map((pane) =>
      el("button.tab", {
        type: "button",
        role: "tab",
        dataset: { pane: pane.id },
        "aria-selected": String(pane === activePane),
        onclick: () => activate(pane),
      }, t(`studio.tab.${pane.id}`)),
    ),
  );
}

function activate(pane) {
  if (activePane && activePane !== pane) {
    activePane.deactivate?.();
    $(`pane-${activePane.id}`).hidden = true;
  }
  activePane = pane;
  $(`pane-${pane.id}`).hidden = false;
  pane.activate?.();
  for (const tab of $("studio-tabs").children) tab.setAttribute("aria-selected", String(tab.dataset.pane === pane.id));
}

// --- checking as the curator types -------------------------------------------------------------------

function draftChanged(text) {
  keepDraftSoon();
  if (sessionEnded) {
    showCheck(); // signed out: nothing to check against until the curator signs in again
    return;
  }
  check.queued = text;
  check.typedAt ??= performance.now(); // the oldest keystroke not yet answered
  check.ok = false;
  showCheck();
  if (!check.running) runCheck();
}

async function runCheck() {
  check.running = true;
  while (check.queued !== null) {
    const text = check.queued;
    const typedAt = check.typedAt;
    check.queued = null;
    check.typedAt = null;
    let result = null;
    try {
      result = await postJSON("/api/v1/studio/check", { text });
    } catch (error) {
      toast(error.message, "error");
    }
    if (result && check.queued === null && studio.editor.getText() === text) {
      check.problems = result.problems;
      check.ok = result.ok;
      check.shown = text;
      studio.editor.setProblems(editorProblems(result.problems));
      showProblems();
      showCheck();
      const shownAt = performance.now();
      // For the benchmark: keystroke to problems on screen, measured in the page.
      document.body.dataset.checkMs = String(Math.round((shownAt - typedAt) * 10) / 10);
      document.body.dataset.checks = String(Number(document.body.dataset.checks || 0) + 1);
    } else if (check.queued === null && studio.editor.getText() !== text) {
      check.queued = studio.editor.getText();
      check.typedAt = typedAt;
    } else if (check.queued !== null) {
      check.typedAt = Math.min(check.typedAt ?? typedAt, typedAt);
    }
  }
  check.running = false;
}

function showProblems() {
  const list = $("problems");
  fill(
    list,
    check.problems.map((problem) =>
      el("li.problem", {
        dataset: { line: problem.line, column: problem.column },
        onclick: () => showPlace(problem),
      },
      el("span.where.mono", {}, `${problem.line}:${problem.column}`),
      " ",
      problem.message,
      problem.hint ? el("span.hint", {}, ` (${problem.hint})`) : null),
    ),
  );
}

/** The server's problems with their columns counted as the editor counts (UTF-16 code units). */
function editorProblems(problems) {
  const doc = studio.editor.view.state.doc;
  return inUtf16(problems, (n) => doc.line(Math.min(Math.max(1, Math.trunc(Number(n)) || 1), doc.lines)).text);
}

/** Put the cursor where a problem is, and bring it into view. */
function showPlace(problem) {
  const view = studio.editor.view;
  const doc = view.state.doc;
  const line = doc.line(Math.min(Math.max(1, problem.line), doc.lines));
  const at = Math.min(line.from + utf16Column(line.text, problem.column) - 1, line.to);
  view.dispatch({ selection: { anchor: at }, scrollIntoView: true });
  studio.editor.focus();
}

function showCheck() {
  const status = $("check-status");
  const current = studio.editor?.getText();
  const unchanged = current === studio.file?.text;
  let text;
  if (sessionEnded) text = t("studio.session_ended_status");
  else if (check.shown !== current) text = t("studio.checking");
  else if (!check.ok) text = t("studio.problems", { n: check.problems.length });
  else if (unchanged) text = t("studio.saved_state");
  else text = t("studio.valid");
  setText(status, text);
  toggle(status, "bad", sessionEnded || (check.shown === current && !check.ok));
  $("save").disabled =
    sessionEnded || saving || !check.ok || check.shown !== current || unchanged || Boolean(studio.file?.locked);
  $("save").title = studio.file?.locked ? t("studio.locked_hint") : "";
}

// --- saving -----------------------------------------------------------------------------------------

async function save() {
  if ($("save").disabled) return;
  saving = true;
  showCheck();
  const text = studio.editor.getText();
  try {
    const answer = await postJSON("/api/v1/studio/save", { text, base: studio.file.sha256 });
    studio.file.text = text;
    studio.file.sha256 = answer.sha256;
    if (studio.editor.getText() === text) forgetDraft();
    else keepDraft(); // typed on while it was saved: the rest is the draft now, based on the new file
    toast(t(`studio.saved.${answer.reload}`, { n: answer.version.number }), answer.reload === "applied" ? "info" : "warn");
    history.refresh?.();
  } catch (error) {
    if (error instanceof HttpError && error.body?.problems) {
      check.problems = error.body.problems;
      studio.editor.setProblems(editorProblems(check.problems));
      showProblems();
    }
    toast(error.message, "error");
  } finally {
    saving = false;
    showCheck();
  }
}

/** The file from disk again (after a restore, or when someone else saved). */
async function reloadFile() {
  studio.file = await getJSON("/api/v1/studio/file");
  forgetDraft();
  studio.editor.setText(studio.file.text);
  draftChanged(studio.file.text);
}

boot().catch((error) => {
  $("boot").textContent = `${t("studio.failed")}: ${error.message}`;
  $("boot").hidden = false;
});
