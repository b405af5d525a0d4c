// History and assets: every saved version (who, when, why), compared with the current file and restored;
// the exhibit folder's files, and uploads into it (the server checks place, kind and size).

import { HttpError, getJSON, postJSON, putBytes } from "../api.js";
import { clockTime, t } from "../i18n.js";
import { confirmDialog, el, fill, setText, toast } from "../ui.js";

const pane = { id: "history", mount, activate, translate, refresh };
export default pane;

let parts = null;
let studio = null;

function mount(root, shared) {
  studio = shared;
  parts = {
    root,
    versionsTitle: el("h2"),
    versions: el("ul.versions", { id: "versions" }),
    diff: el("pre.diff", { id: "diff", hidden: true }),
    assetsTitle: el("h2"),
    assets: el("ul.assets", { id: "assets" }),
    file: el("input", { type: "file", id: "upload-file" }),
    folder: el("input", { type: "text", id: "upload-folder", value: "", spellcheck: "false" }),
    upload: el("button.primary", { type: "button", id: "upload", onclick: upload }),
    replace: el("input", { type: "checkbox", id: "upload-replace" }),
    replaceLabel: el("span"),
  };
  root.append(
    el("div.card", {}, parts.versionsTitle, parts.versions, parts.diff),
    el("div.card", {},
      parts.assetsTitle,
      parts.assets,
      el("div.upload-row", {}, parts.folder, parts.file, el("label", {}, parts.replace, parts.replaceLabel), parts.upload)),
  );
  translate();
}

function translate() {
  if (!parts) return;
  setText(parts.versionsTitle, t("studio.history"));
  setText(parts.assetsTitle, t("studio.assets"));
  setText(parts.upload, t("studio.upload"));
  setText(parts.replaceLabel, t("studio.replace"));
  parts.folder.placeholder = t("studio.upload_folder");
}

function activate() {
  refresh();
}

async function refresh() {
  if (!parts) return;
  const [versions, assets] = await Promise.all([
    getJSON("/api/v1/studio/history").catch(() => null),
    getJSON("/api/v1/studio/assets").catch(() => null),
  ]);
  if (versions) showVersions(versions.versions, versions.current);
  if (assets) {
    fill(parts.assets, assets.assets.map((a) => el("li", {}, el("span.mono", {}, a.path), " ", el("span.hint", {}, bytes(a.size)))));
  }
}

function showVersions(versions, current) {
  fill(
    parts.versions,
    versions.map((v) =>
      el("li.version", { dataset: { version: v.number } },
        el("span.mono", {}, `#${v.number}`),
        " ",
        el("span", {}, `${v.user} · ${clockTime(Date.parse(v.at) / 1000, false)}`),
        v.note ? el("span.hint", {}, ` ${v.note}`) : null,
        v.sha256 === current ? el("span.chip", {}, t("studio.current")) : null,
        el("span.version-actions", {},
          el("button.compare", { type: "button", onclick: () => compare(v.number) }, t("studio.compare")),
          v.sha256 === current ? null : el("button.restore", { type: "button", onclick: () => restore(v.number) }, t("studio.restore")))),
    ),
  );
}

async function compare(number) {
  const answer = await getJSON(`/api/v1/studio/history/${number}/diff`).catch((error) => toast(error.message, "error"));
  if (!answer) return;
  parts.diff.hidden = false;
  fill(
    parts.diff,
    answer.diff
      ? answer.diff.split("\n").map((line) => el(`span.${line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "same"}`, {}, `${line}\n`))
      : t("studio.no_difference"),
  );
}

async function restore(number) {
  const sure = await confirmDialog(t("studio.restore_title", { n: number }), t("studio.restore_text"), t("studio.restore"));
  if (!sure) return;
  try {
    const answer = await postJSON(`/api/v1/studio/history/${number}/restore`, { base: studio.file.sha256 });
    toast(t(`studio.saved.${answer.reload}`, { n: answer.version.number }), answer.reload === "applied" ? "info" : "warn");
    await studio.reloadFile();
    await refresh();
  } catch (error) {
    toast(error.message, "error");
  }
}

async function upload() {
  const file = parts.file.files?.[0];
  if (!file) {
    toast(t("studio.upload_choose"), "error");
    return;
  }
  const folder = parts.folder.value.trim().replace(/^\/+|\/+$/g, "");
  const path = folder ? `${folder}/${file.name}` : file.name;
  const target = `/api/v1/studio/assets/${path.split("/").map(encodeURIComponent).join("/")}`;
  try {
    const answer = await putBytes(parts.replace.checked ? `${target}?replace=1` : target, file);
    toast(t("studio.uploaded", { path: answer.path }), "info");
    await refresh();
    studio.setDraft(studio.editor.getText()); // a missing file the draft names may be there now
  } catch (error) {
    toast(error instanceof HttpError ? error.message : String(error), "error");
  }
}

function bytes(size) {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  return `${(size / 1024 / 1024).toFixed(1)} MiB`;
}
