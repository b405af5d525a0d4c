// The curator's studio: the exhibit file in an editor, checked by the server's own checker as it is typed
// (one check at a time, always of the latest text), saved only when it has no problems; beside it the
// preview, the simulation controls, the inspector, the history and the assets.

import { HttpError, Live, getJSON, postJSON, restoreSession, session } from "../api.js";
import { lang, loadDictionaries, setLang, t, translateStatic } from "../i18n.js";
import { createEditor } from "../../vendor/codemirror/editor.js";
import { el, fill, setText, toast, toggle } from "../ui.js";
import preview from "./preview.js";
import simulate from "./simulate.js";
import inspector from "./inspector.js";
import history from "./history.js";

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

async function boot() {
  await loadDictionaries();
  translateStatic();
  for (const button of document.querySelectorAll(".lang-switch")) {
    button.addEventListener("click", () => {
      setLang(lang() === "en" ? "zh" : "en");
      translateStatic();
      buildTabs();
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
  studio.live = new Live({
    onEvent: (event) => {
      if (event.topic === "show" || event.topic === "hello") studio.state.set(event.topic, event.data);
      if (event.topic === "show") showLock();
      for (const pane of PANES) pane.onEvent?.(event);
    },
    onStatus: (online) => toggle($("conn-dot"), "online", online),
    onClosedForGood: () => location.reload(),
  });
  studio.live.start();
  for (const pane of PANES) {
    const root = el("div.studio-pane", { id: `pane-${pane.id}`, hidden: true });
    $("studio-panes").append(root);
    pane.mount(root, studio);
  }
  buildTabs();
  activate(PANES[0]);
  draftChanged(studio.file.text); // the file as it is on disk: show its problems (or none) at once
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
      studio.editor.setProblems(result.problems);
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

/** Put the cursor where a problem is, and bring it into view. */
function showPlace(problem) {
  const view = studio.editor.view;
  const doc = view.state.doc;
  const line = doc.line(Math.min(Math.max(1, problem.line), doc.lines));
  const at = Math.min(line.from + Math.max(0, problem.column - 1), line.to);
  view.dispatch({ selection: { anchor: at }, scrollIntoView: true });
  studio.editor.focus();
}

function showCheck() {
  const status = $("check-status");
  const current = studio.editor?.getText();
  const unchanged = current === studio.file?.text;
  let text;
  if (check.shown !== current) text = t("studio.checking");
  else if (!check.ok) text = t("studio.problems", { n: check.problems.length });
  else if (unchanged) text = t("studio.saved_state");
  else text = t("studio.valid");
  setText(status, text);
  toggle(status, "bad", check.shown === current && !check.ok);
  $("save").disabled = saving || !check.ok || check.shown !== current || unchanged || Boolean(studio.file?.locked);
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
    toast(t(`studio.saved.${answer.reload}`, { n: answer.version.number }), answer.reload === "applied" ? "info" : "warn");
    history.refresh?.();
  } catch (error) {
    if (error instanceof HttpError && error.body?.problems) {
      check.problems = error.body.problems;
      studio.editor.setProblems(check.problems);
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
  studio.editor.setText(studio.file.text);
  draftChanged(studio.file.text);
}

boot().catch((error) => {
  $("boot").textContent = `${t("studio.failed")}: ${error.message}`;
  $("boot").hidden = false;
});
