// Safety: the e-stop latch and what latched it, E-STOP and its reset (which asks first), PANIC, and
// the motion devices with arm / disarm.

import { t } from "../i18n.js";
import { el, fill, reconcile, setText, toggle } from "../ui.js";

const view = { id: "safety", topics: ["safety", "show"], mount, render };
export default view;

let parts = null;

function mount(root, ctx) {
  parts = {
    estopTitle: el("h2"),
    estopState: el("p.estop-state"),
    estopBy: el("p.estop-by"),
    panicTitle: el("h2"),
    panicState: el("p.panic-state"),
    motionTitle: el("h2"),
    motion: el("div.rows"),
    blocked: el("p.hint"),
  };
  const estopCard = el("div.card.estop-card", {}, parts.estopTitle, parts.estopState, parts.estopBy);
  const panicCard = el("div.card.panic-card", {}, parts.panicTitle, parts.panicState);
  if (ctx.may("operator")) {
    // E-STOP latches at once; only its reset asks, because a reset may let something move again.
    parts.estop = el("button.big.danger", {
      type: "button",
      dataset: { cmd: "estop" },
      onclick: () => ctx.command("estop", {}, t("safety.btn_estop")),
    });
    parts.reset = el("button.big", {
      type: "button",
      dataset: { cmd: "estop/reset" },
      onclick: () =>
        ctx.askThenRun(
          "estop/reset",
          {},
          t("safety.btn_reset"),
          t("safety.confirm_reset_title"),
          t("safety.confirm_reset_text"),
        ),
    });
    estopCard.append(el("div.toolbar", {}, parts.estop, parts.reset));
    parts.panic = el("button.big.panic", {
      type: "button",
      dataset: { cmd: "panic" },
      onclick: () => ctx.command("panic", {}, t("btn.panic")),
    });
    parts.panicReset = el("button.big", {
      type: "button",
      dataset: { cmd: "reset" },
      onclick: () =>
        ctx.askThenRun(
          "reset",
          {},
          t("btn.reset_panic"),
          t("safety.confirm_panic_reset_title"),
          t("safety.confirm_panic_reset_text"),
        ),
    });
    panicCard.append(el("div.toolbar", {}, parts.panic, parts.panicReset));
  }
  root.append(
    el("div.safety-grid", {}, estopCard, panicCard),
    el("div.card.motion-card", {}, parts.motionTitle, parts.motion, parts.blocked),
  );
}

function render(ctx) {
  const safety = ctx.state.get("safety") || { estop: false, by: null, motion: [], armed: [], blocked: 0 };
  const show = ctx.state.get("show");
  setText(parts.estopTitle, t("safety.estop"));
  setText(parts.estopState, t(safety.estop ? "safety.latched" : "safety.released"));
  parts.estopState.className = `estop-state ${safety.estop ? "bad" : "good"}`;
  parts.estopState.dataset.latched = String(Boolean(safety.estop));
  setText(parts.estopBy, safety.estop && safety.by ? t("safety.latched_by", { by: safety.by }) : "");
  setText(parts.panicTitle, t("safety.panic"));
  setText(parts.panicState, t(show?.panic ? "safety.panic_on" : "safety.panic_off"));
  parts.panicState.className = `panic-state ${show?.panic ? "bad" : "good"}`;
  if (parts.estop) {
    setText(parts.estop, t("safety.btn_estop"));
    setText(parts.reset, t("safety.btn_reset"));
    parts.reset.disabled = !safety.estop;
    setText(parts.panic, t("btn.panic"));
    setText(parts.panicReset, t("btn.reset_panic"));
    parts.panicReset.disabled = !show?.panic;
  }
  setText(parts.motionTitle, t("safety.motion"));
  setText(parts.blocked, t("safety.blocked", { n: safety.blocked ?? 0 }));
  renderMotion(ctx, safety);
}

function renderMotion(ctx, safety) {
  const devices = safety.motion || [];
  if (!devices.length) {
    fill(parts.motion, el("p.empty", {}, t("safety.no_motion")));
    return;
  }
  parts.motion.querySelector(":scope > .empty")?.remove();
  const armed = new Set(safety.armed || []);
  reconcile(
    parts.motion,
    devices,
    (name) => name,
    (name) => {
      const row = el("div.row.motion", { dataset: { device: name } });
      row.badge = el("span.badge");
      row.append(el("div.row-head", {}, el("span.row-name", {}, name), row.badge));
      if (ctx.may("operator")) {
        row.arm = el("button", {
          type: "button",
          dataset: { cmd: "arm" },
          onclick: () => ctx.command("arm", { device: name }, `${t("safety.arm")} ${name}`),
        });
        row.disarm = el("button", {
          type: "button",
          dataset: { cmd: "disarm" },
          onclick: () => ctx.command("disarm", { device: name }, `${t("safety.disarm")} ${name}`),
        });
        row.append(el("div.choices", {}, row.arm, row.disarm));
      }
      return row;
    },
    (row, name) => {
      const on = armed.has(name);
      setText(row.badge, t(on ? "safety.armed" : "safety.disarmed"));
      row.badge.className = `badge ${on ? "warn" : "quiet"}`;
      row.dataset.armed = String(on);
      if (row.arm) {
        setText(row.arm, t("safety.arm"));
        setText(row.disarm, t("safety.disarm"));
        row.arm.disabled = on || Boolean(safety.estop);
        row.disarm.disabled = !on;
        toggle(row, "armed", on);
      }
    },
  );
}
