// Site: every node of the show network (what each announces: exhibit, role, mode, who drives and at
// which epoch, health, clock offset to site time, version, exhibit file), this node highlighted; a
// backup's TAKE OVER (asks first) and a GO fired on several nodes at the same site time; every exhibit's
// visitors of the last 24 hours on the site's broker (its retained analytics/today), with the site's totals
// added up as the site report adds them.

import { clockTime, lang, t, word } from "../i18n.js";
import { el, fill, reconcile, setText, toast, toggle } from "../ui.js";

const view = { id: "site", topics: ["site", "node", "cuelist/"], mount, render };
export default view;

const COLUMNS = ["node", "exhibit", "role", "mode", "driving", "health", "offset", "version", "hash", "online"];
const VISITOR_COLUMNS = ["exhibit", "visitors", "attraction", "median", "p90", "mean", "peak", "interactions"];
const DASH = "–";
const OFFSET_WARN_MS = 20; // beyond this a synced GO is audibly apart
let parts = null;
let goNote = null; // what the GO form last said: {key, vars, warn}, rendered in the current language

/** The node that drives the devices as this node hears it (for "tracking <holder>"), or a neutral word. */
export function holderOf(ctx) {
  const site = ctx.state.get("site");
  const self = ctx.state.get("node")?.name;
  const nodes = site?.nodes || [];
  const driver =
    nodes.find((n) => n.driving && n.online !== false && n.node !== self) || nodes.find((n) => n.driving && n.node !== self);
  return driver?.node || t("mode.holder_unknown");
}

function mount(root, ctx) {
  parts = {
    title: el("h2"),
    prefix: el("p.hint.site-prefix"),
    reference: el("p.site-reference"),
    offset: el("p.site-offset"),
    alone: el("p.hint"),
    nodesTitle: el("h2"),
    head: el("tr"),
    body: el("tbody"),
    empty: el("p.empty"),
  };
  const headCard = el("div.card.site-head", {}, parts.title, parts.reference, parts.offset, parts.prefix, parts.alone);
  if (ctx.may("operator")) {
    parts.takeover = el("button.big.danger", {
      type: "button",
      dataset: { cmd: "site/takeover" },
      onclick: () => {
        const holder = holderOf(ctx);
        ctx.askThenRun(
          "site/takeover",
          {},
          t("site.takeover"),
          t("site.confirm_takeover_title"),
          t("site.confirm_takeover_text", { holder }),
        );
      },
    });
    parts.takeoverHint = el("p.hint");
    parts.takeoverBox = el("div.site-takeover", {}, parts.takeoverHint, el("div.toolbar", {}, parts.takeover));
    headCard.append(parts.takeoverBox);
  }
  root.append(
    headCard,
    el(
      "div.card.site-card",
      {},
      parts.nodesTitle,
      el("table.site-table", {}, el("thead", {}, parts.head), parts.body),
      parts.empty,
    ),
  );
  if (ctx.may("operator")) root.append(mountGo(ctx));
  root.append(mountVisitors());
}

function mountVisitors() {
  const visitors = {
    title: el("h2"),
    simulated: el("div.site-visitors-simulated", { role: "status" }),
    head: el("tr"),
    body: el("tbody"),
    total: el("tr.site-visitors-total"),
    table: null,
    note: el("p.hint.site-visitors-note"),
    empty: el("p.empty.site-visitors-empty"),
    signature: null,
  };
  visitors.table = el(
    "table.site-table.site-visitors-table",
    {},
    el("thead", {}, visitors.head),
    visitors.body,
    el("tfoot", {}, visitors.total),
  );
  parts.visitors = visitors;
  const { title, simulated, table, note, empty } = visitors;
  return el("div.card.site-card.site-visitors", {}, title, simulated, table, note, empty);
}

function mountGo(ctx) {
  const go = {
    title: el("h2"),
    nodesLabel: el("span.go-label"),
    nodes: el("div.choices.go-nodes"),
    listLabel: el("span"),
    list: el("select", { name: "go-cue-list" }),
    cueLabel: el("span"),
    cue: el("input", { name: "go-cue", autocomplete: "off", spellcheck: false }),
    leadLabel: el("span"),
    lead: el("input", { name: "go-lead", type: "number", min: "0.05", max: "60", step: "0.05", value: "1" }),
    button: el("button.primary.big.go-together", { type: "submit", dataset: { cmd: "site/go" } }),
    hint: el("p.hint"),
  };
  parts.go = go;
  const form = el(
    "form.card.go-card",
    { onsubmit: (event) => submitGo(event, ctx) },
    go.title,
    el("div.go-row", {}, go.nodesLabel, go.nodes),
    el(
      "div.toolbar.go-fields",
      {},
      el("label", {}, go.listLabel, go.list),
      el("label", {}, go.cueLabel, go.cue),
      el("label.go-lead", {}, go.leadLabel, go.lead),
      go.button,
    ),
    go.hint,
  );
  return form;
}

async function submitGo(event, ctx) {
  event.preventDefault();
  const go = parts.go;
  const nodes = [...go.nodes.querySelectorAll("input:checked")].map((box) => box.value);
  if (!nodes.length) {
    goNote = { key: "site.go_pick", vars: {}, warn: true };
    toast(t("site.go_pick"), "error");
    view.dirty = true;
    ctx.rerender();
    return;
  }
  const params = { nodes: nodes.join(","), lead: Number(go.lead.value) || 1 };
  if (go.list.value) params.cue_list = go.list.value;
  if (go.cue.value.trim()) params.cue = go.cue.value.trim();
  go.button.disabled = true;
  try {
    const reply = await ctx.command("site/go", params, t("site.go_button"));
    if (reply?.status === "ok") {
      const data = reply.data || {};
      const when = typeof data.start_at === "number" ? data.start_at : null;
      goNote = { key: "site.go_sent", vars: { nodes: (data.nodes || nodes).join(", "), when }, warn: false };
    }
  } finally {
    view.dirty = true;
    ctx.rerender();
  }
}

function render(ctx) {
  const site = ctx.state.get("site") || { nodes: [] };
  const node = ctx.state.get("node") || {};
  const self = node.name;
  const nodes = withSelf(site.nodes || [], node).sort((a, b) => String(a.node).localeCompare(String(b.node)));
  const mine = nodes.find((n) => n.node === self);

  setText(parts.title, t("site.network"));
  setText(parts.prefix, site.prefix ? t("site.prefix", { prefix: site.prefix }) : "");
  setText(parts.reference, site.reference ? t("site.reference", { node: site.reference }) : t("site.reference_none"));
  const offset = typeof site.clock_offset_ms === "number" ? site.clock_offset_ms : null;
  setText(parts.offset, offset === null ? "" : t("site.this_offset", { ms: signed(offset) }));
  parts.offset.className = `site-offset ${offset !== null && Math.abs(offset) > OFFSET_WARN_MS ? "warn" : "quiet"}`;
  const alone = !node.role && nodes.filter((n) => n.node !== self).length === 0;
  setText(parts.alone, alone ? t("site.alone") : "");
  parts.alone.hidden = !alone;

  if (parts.takeoverBox) {
    const backupTracking = node.role === "backup" && !node.driving;
    parts.takeoverBox.hidden = !backupTracking;
    setText(parts.takeover, t("site.takeover"));
    setText(parts.takeoverHint, t("site.takeover_hint", { holder: holderOf(ctx) }));
  }

  setText(parts.nodesTitle, t("site.nodes"));
  const signature = COLUMNS.map((c) => t(`site.col.${c}`)).join("|");
  if (parts.head.dataset.signature !== signature) {
    parts.head.dataset.signature = signature;
    fill(parts.head, COLUMNS.map((c) => el("th", {}, t(`site.col.${c}`))));
  }
  parts.empty.hidden = nodes.length > 0;
  setText(parts.empty, t("site.no_nodes"));
  const context = { self, hash: mine?.file_hash || "" };
  reconcile(parts.body, nodes, (n) => n.node, createRow, (row, n) => updateRow(row, n, context));

  if (parts.go) renderGo(ctx, node, nodes);
  renderVisitors(site.analytics);
}

/**
 * The nodes as announced, this node's entry completed from its own ``node`` topic: fresher than its last
 * announcement (which the broker echoes back a moment later), and there before the first one is heard.
 */
function withSelf(announced, node) {
  const nodes = announced.map((n) => ({ ...n }));
  if (!node.name) return nodes;
  let mine = nodes.find((n) => n.node === node.name);
  if (!mine) {
    mine = { node: node.name, online: true };
    nodes.push(mine);
  }
  if (node.mode) mine.mode = node.mode;
  if (typeof node.driving === "boolean") mine.driving = node.driving;
  if (typeof node.epoch === "number") mine.epoch = node.epoch;
  mine.role = node.role || mine.role || "alone";
  return nodes;
}

function createRow(n) {
  const row = el("tr.site-node", { dataset: { node: n.node } });
  row.cell = {}; // the row's parts (not properties of the row itself: `role`, `hidden`... are taken)
  row.cell.name = el("span.row-name");
  row.cell.me = el("span.badge.this-badge");
  row.cell.exhibit = el("td");
  row.cell.role = el("span.badge");
  row.cell.mode = el("span.badge");
  row.cell.driving = el("span");
  row.cell.epoch = el("span.mono.quiet");
  row.cell.status = el("span.status");
  row.cell.problems = el("div.site-problems");
  row.cell.offset = el("td.mono");
  row.cell.version = el("td.mono");
  row.cell.hash = el("td.mono");
  row.cell.online = el("span.badge");
  row.append(
    el("td", {}, el("div.site-name", {}, row.cell.name, row.cell.me)),
    row.cell.exhibit,
    el("td", {}, row.cell.role),
    el("td", {}, row.cell.mode),
    el("td", {}, el("div.site-driving", {}, row.cell.driving, row.cell.epoch)),
    el("td", {}, row.cell.status, row.cell.problems),
    row.cell.offset,
    row.cell.version,
    row.cell.hash,
    el("td", {}, row.cell.online),
  );
  return row;
}

function updateRow(row, n, { self, hash }) {
  const isSelf = n.node === self;
  const online = n.online !== false;
  toggle(row, "this-node", isSelf);
  toggle(row, "gone", !online);
  row.dataset.self = String(isSelf);
  row.dataset.mode = n.mode || "";
  row.dataset.online = String(online);
  setText(row.cell.name, n.node);
  setText(row.cell.me, isSelf ? t("site.this_node") : "");
  row.cell.me.hidden = !isSelf;
  setText(row.cell.exhibit, n.exhibit || t("value.none"));
  setText(row.cell.role, n.role ? word("site.role", n.role) : t("value.none"));
  row.cell.role.className = `badge ${n.role === "primary" ? "good" : "quiet"}`;
  setText(row.cell.mode, n.mode ? word("site.mode", n.mode) : t("value.none"));
  row.cell.mode.className = `badge ${n.mode === "safe-mode" ? "bad" : n.mode === "running" ? "good" : "quiet"}`;
  if (typeof n.driving === "boolean") {
    setText(row.cell.driving, t(n.driving ? "site.driving" : "site.not_driving"));
    row.cell.driving.className = n.driving ? "site-drives" : "quiet";
  } else {
    setText(row.cell.driving, t("value.none"));
    row.cell.driving.className = "quiet";
  }
  setText(row.cell.epoch, typeof n.epoch === "number" && n.epoch > 0 ? t("site.epoch", { n: n.epoch }) : "");
  const health = n.health || null;
  setText(row.cell.status, health ? word("health.status", health) : t("value.none"));
  row.cell.status.className = health ? `status ${health}` : "quiet";
  row.cell.status.dataset.health = health || "";
  const problems = Array.isArray(n.problems) ? n.problems : [];
  setText(row.cell.problems, problems.join(" · "));
  row.cell.problems.hidden = !problems.length;
  const offset = typeof n.clock_offset_ms === "number" ? n.clock_offset_ms : null;
  setText(row.cell.offset, offset === null ? t("value.none") : t("site.ms", { ms: signed(offset) }));
  row.cell.offset.className = `mono ${offset !== null && Math.abs(offset) > OFFSET_WARN_MS ? "warn" : ""}`;
  setText(row.cell.version, n.version || t("value.none"));
  const short = n.file_hash ? String(n.file_hash).slice(0, 8) : "";
  setText(row.cell.hash, short || t("value.none"));
  const differs = Boolean(short && hash && n.file_hash !== hash);
  row.cell.hash.className = `mono ${differs ? "warn" : "quiet"}`;
  row.cell.hash.title = differs ? t("site.hash_differs") : n.file_hash || "";
  setText(row.cell.online, t(online ? "site.online" : "site.offline"));
  row.cell.online.className = `badge ${online ? "good" : "bad"}`;
}

function renderGo(ctx, node, nodes) {
  const go = parts.go;
  setText(go.title, t("site.go_title"));
  setText(go.nodesLabel, t("site.go_nodes"));
  setText(go.listLabel, t("site.go_cue_list"));
  setText(go.cueLabel, t("site.go_cue"));
  setText(go.leadLabel, t("site.go_lead"));
  setText(go.button, t("site.go_button"));
  reconcile(
    go.nodes,
    nodes,
    (n) => n.node,
    (n) => {
      const box = el("input", {
        type: "checkbox",
        name: "go-node",
        value: n.node,
        onchange: () => {
          if (goNote?.key === "site.go_pick") goNote = null;
          view.dirty = true;
          ctx.rerender();
        },
      });
      const label = el("label.choice.go-node", {}, box, el("span", {}, n.node));
      label.box = box;
      return label;
    },
    (label, n) => {
      toggle(label, "gone", n.online === false);
      label.dataset.node = n.node;
    },
  );
  const lists = [...ctx.state.keys()].filter((topic) => topic.startsWith("cuelist/")).map((topic) => topic.slice(8));
  const signature = `${t("site.go_cue_list_any")}|${lists.join("|")}`;
  if (go.list.dataset.signature !== signature) {
    go.list.dataset.signature = signature;
    const chosen = go.list.value;
    fill(go.list, el("option", { value: "" }, t("site.go_cue_list_any")), lists.map((name) => el("option", { value: name }, name)));
    go.list.value = lists.includes(chosen) ? chosen : "";
  }
  const backup = node.role === "backup" && !node.driving;
  go.button.disabled = backup || !ctx.online;
  const note = backup ? { key: "site.go_backup", vars: {}, warn: true } : goNote || { key: "site.go_hint", vars: {} };
  const vars = { ...note.vars };
  if ("when" in vars) vars.when = vars.when === null ? "" : clockTime(vars.when);
  setText(go.hint, t(note.key, vars));
  go.hint.dataset.note = note.key;
  toggle(go.hint, "warn", Boolean(note.warn));
}

// --- visitors of the last 24 hours -------------------------------------------------------------

/**
 * One row per exhibit's retained summary and the site's totals, summed as the site report sums them: the
 * visitors and those who stopped of every exhibit with k visitors or more (one with fewer sent no such figure),
 * attraction their ratio, the peak the highest of all. The site topic changes with every clock measurement:
 * nothing is touched unless the summaries or the language changed.
 */
function renderVisitors(analytics) {
  const v = parts.visitors;
  const summaries = (Array.isArray(analytics) ? analytics : []).filter((s) => s && typeof s === "object");
  const signature = `${lang()}|${JSON.stringify(summaries)}`;
  if (v.signature === signature) return;
  v.signature = signature;

  setText(v.title, t("site.visitors_title"));
  fill(v.head, VISITOR_COLUMNS.map((c, i) => el(i ? "th.num" : "th", {}, t(`site.visitors_col.${c}`))));
  const seen = new Set();
  const rows = summaries.map((s, i) => {
    let id = String(s.exhibit ?? `#${i + 1}`);
    if (seen.has(id)) id = `${id}#${i + 1}`;
    seen.add(id);
    return { id, s };
  });
  reconcile(v.body, rows, (r) => r.id, createVisitorRow, updateVisitorRow);

  let visitors = 0;
  let stopped = 0;
  let peak = 0;
  const simulated = [];
  for (const { s } of rows) {
    if (s.simulated) simulated.push(String(s.exhibit ?? "?"));
    peak = Math.max(peak, number(s.occupancy_peak));
    if (!s.suppressed) {
      visitors += number(s.visitors);
      stopped += number(s.stopped);
    }
  }
  const totals = [
    t("site.visitors_total"),
    count(Math.trunc(visitors)),
    visitors ? `${roundHalfEven((stopped / visitors) * 100)}%` : DASH,
    DASH,
    DASH,
    DASH,
    peak ? count(roundHalfEven(peak)) : DASH,
    DASH,
  ];
  fill(v.total, totals.map((text, i) => el(i ? "th.num" : "th", {}, text)));

  const any = rows.length > 0;
  v.table.hidden = !any;
  v.note.hidden = !any;
  setText(v.note, t("site.visitors_note"));
  v.empty.hidden = any;
  setText(v.empty, t("site.visitors_none"));
  v.simulated.hidden = simulated.length === 0;
  setText(v.simulated, simulated.length ? t("site.visitors_simulated", { exhibits: simulated.join(", ") }) : "");
}

function createVisitorRow(r) {
  const row = el("tr.site-visitor", { dataset: { exhibit: r.s.exhibit ?? "" } });
  row.cell = { exhibit: el("span.row-name"), until: el("span.hint.site-visitors-until") };
  row.cell.figures = VISITOR_COLUMNS.slice(1).map(() => el("td.num"));
  row.append(el("td", {}, el("div.site-visitors-name", {}, row.cell.exhibit, row.cell.until)), ...row.cell.figures);
  return row;
}

function updateVisitorRow(row, { s }) {
  const suppressed = Boolean(s.suppressed);
  const k = s.k ?? 5;
  toggle(row, "suppressed", suppressed);
  row.dataset.suppressed = String(suppressed);
  row.dataset.simulated = String(Boolean(s.simulated));
  setText(row.cell.exhibit, s.exhibit ?? "?");
  setText(row.cell.until, typeof s.to === "number" ? t("site.visitors_until", { time: clockTime(s.to, false) }) : "");
  const interactions = Object.values(s.interactions || {}).reduce((sum, n) => sum + number(n), 0);
  const perVisitor = suppressed
    ? [t("site.visitors_fewer", { k }), DASH, DASH, DASH, DASH]
    : [
        count(Math.trunc(number(s.visitors))),
        typeof s.attraction === "number" ? `${roundHalfEven(s.attraction * 100)}%` : DASH,
        seconds(s.holding_median_s),
        seconds(s.holding_p90_s),
        typeof s.occupancy_mean === "number" ? s.occupancy_mean.toFixed(2) : DASH,
      ];
  const peak = typeof s.occupancy_peak === "number" ? count(s.occupancy_peak) : DASH;
  const cells = [...perVisitor, peak, count(Math.trunc(interactions))];
  cells.forEach((text, i) => setText(row.cell.figures[i], text));
  row.cell.figures[0].title = suppressed ? t("site.visitors_fewer_title", { k }) : "";
}

function number(value) {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

function count(value) {
  return typeof value === "number" ? value.toLocaleString(lang() === "zh" ? "zh-CN" : "en-GB") : DASH;
}

function seconds(value) {
  return typeof value === "number" ? t("analytics.seconds", { s: value }) : DASH;
}

/** Rounded as the site report (Python's round) rounds: a half to the even neighbour. */
function roundHalfEven(value) {
  const floor = Math.floor(value);
  const rest = value - floor;
  if (rest > 0.5) return floor + 1;
  if (rest < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Milliseconds with a sign and one decimal: "+0.2", "−3.5", "0.0". */
function signed(ms) {
  const value = Math.round(ms * 10) / 10;
  if (value === 0) return "0.0";
  return `${value > 0 ? "+" : "−"}${Math.abs(value).toFixed(1)}`;
}
