// Preview: the rendered scene as MJPEG from the render process, sized for this pane. Never camera pixels:
// the server leaves an AR mirror's camera picture out (unless the exhibit opts in and this is the exhibit's
// own computer).

import { t } from "../i18n.js";
import { el, setText } from "../ui.js";

const pane = { id: "preview", mount, activate, deactivate, translate };
export default pane;

let parts = null;

function mount(root) {
  parts = {
    root,
    image: el("img.preview-image", { alt: "", id: "preview-image" }),
    note: el("p.hint"),
  };
  root.append(el("div.card.preview-card", {}, parts.image, parts.note));
  translate();
}

function translate() {
  if (!parts) return;
  parts.image.alt = t("studio.preview_alt");
  setText(parts.note, t("studio.preview_note"));
}

function activate() {
  const width = Math.max(160, Math.min(1280, Math.round(parts.root.clientWidth * (window.devicePixelRatio || 1)) || 640));
  // A new stream each time the pane shows: nothing is drawn for a hidden pane.
  parts.image.src = `/api/v1/studio/preview.mjpg?width=${width}&t=${Date.now()}`;
}

function deactivate() {
  parts.image.removeAttribute("src");
}
