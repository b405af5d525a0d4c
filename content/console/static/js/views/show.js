// Show: the cue lists with their playhead (GO / BACK, tap a cue to put the playhead on it), PAUSE /
// RESUME and STOP, state machines, timelines, variables, the opening hours and the audience's phones.

import { clockTime, lang, relative, t } from "../i18n.js";
import { el, fill, reconcile, setText, showValue, toggle } from "../ui.js";

const view = {
  id: "show",
  topics: ["show", "cuelist/", "state/", "timeline/", "var/", "schedule", "audience/"],
  mount,
  render,
};
export default view;

let parts = null;

function mount(root, ctx) {
  const operator = ctx.may("operator");
  parts = {
    status: el("div.status-line"),
    toolbar: el("div.toolbar"),
    cueLists: el("div.cuelists"),
    states: el("div.rows"),
    timelines: el("div.rows"),
    variables: el("div.rows"),
    schedule: el("div.schedule"),
    audience: el("div.rows"),
    titles: {},
  };
  if (operator) {
    parts.pause = el("button.big.pause", { type: "button", dataset: { cmd: "pause" }, onclick: () => togglePause(ctx) });
    parts.stop = el("button.big", {
      type: "button",
      dataset: { cmd: "stop" },
      onclick: () => ctx.command("stop", {}, t("btn.stop")),
    });
    parts.toolbar.append(parts.pause, parts.stop);
    parts.lock = el("button", { type: "button", dataset: { cmd: "lock" }, onclick: () => toggleLock(ctx) });
    parts.toolbar.append(parts.lock);
  }
  if (ctx.may("admin")) {
    parts.reload = el("button", {
      type: "button",
      dataset: { cmd: "reload" },
      onclick: () => ctx.command("reload", {}, t("btn.reload")),
    });
    parts.toolbar.append(parts.reload);
  }
  const card = (key, body) => {
    parts.titles[key] = el("h2");
    return el(`div.card.card-${key}`, {}, parts.titles[key], body);
  };
  root.append(
    el("div.show-head", {}, parts.status, parts.toolbar),
    parts.cueLists,
    el(
      "div.show-grid",
      {},
      card("states", parts.states),
      card("timelines", parts.timelines),
      card("variables", parts.variables),
      card("schedule", parts.schedule),
      card("audience", parts.audience),
    ),
  );
}

function togglePause(ctx) {
  const paused = Boolean(ctx.state.get("show")?.paused);
  ctx.command(paused ? "resume" : "pause", {}, t(paused ? "btn.resume" : "btn.pause"));
}

function toggleLock(ctx) {
  const locked = Boolean(ctx.state.get("show")?.locked);
  ctx.command(locked ? "unlock" : "lock", {}, t(locked ? "btn.unlock" : "btn.lock"));
}

function byPrefix(state, prefix) {
  return [...state.entries()]
    .filter(([topic]) => topic.startsWith(prefix))
    .map(([topic, data]) => ({ name: topic.slice(prefix.length), data }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

function render(ctx) {
  const show = ctx.state.get("show");
  renderStatus(ctx, show);
  renderCueLists(ctx, byPrefix(ctx.state, "cuelist/"));
  setText(parts.titles.states, t("show.states"));
  setText(parts.titles.timelines, t("show.timelines"));
  setText(parts.titles.variables, t("show.variables"));
  setText(parts.titles.schedule, t("show.schedule"));
  renderStates(ctx, byPrefix(ctx.state, "state/"));
  renderTimelines(byPrefix(ctx.state, "timeline/"));
  renderVariables(ctx, byPrefix(ctx.state, "var/"));
  renderSchedule(ctx.state.get("schedule"));
  setText(parts.titles.audience, t("show.audience"));
  renderAudience(ctx, byPrefix(ctx.state, "audience/"));
}

function renderStatus(ctx, show) {
  const words = [];
  if (show?.safe_mode) words.push(el("span.badge.bad", {}, t("show.safe_mode")));
  else if (!show || !show.running) words.push(el("span.badge.bad", {}, t("show.not_running")));
  else {
    words.push(el("span.badge.good", {}, t("show.running")));
    if (show.paused) words.push(el("span.badge.warn", {}, t("show.paused")));
  }
  if (show?.locked) words.push(el("span.badge.warn", {}, t("show.locked")));
  if (show?.action_errors) words.push(el("span.badge.warn", {}, t("show.action_errors", { n: show.action_errors })));
  const signature = words.map((w) => w.textContent).join("|");
  if (parts.status.dataset.signature !== signature) {
    parts.status.dataset.signature = signature;
    fill(parts.status, words);
  }
  if (parts.pause) {
    const paused = Boolean(show?.paused);
    setText(parts.pause, t(paused ? "btn.resume" : "btn.pause"));
    parts.pause.dataset.cmd = paused ? "resume" : "pause";
    toggle(parts.pause, "active", paused);
    setText(parts.stop, t("btn.stop"));
    const locked = Boolean(show?.locked);
    setText(parts.lock, t(locked ? "btn.unlock" : "btn.lock"));
    parts.lock.dataset.cmd = locked ? "unlock" : "lock";
    // unlocking is an admin's call: an operator sees the lock, not a button that would be refused
    parts.lock.hidden = locked && !ctx.may("admin");
  }
  if (parts.reload) {
    setText(parts.reload, t("btn.reload"));
    parts.reload.hidden = Boolean(show?.locked); // the show lock hides reload during a performance
  }
}

// --- cue lists --------------------------------------------------------------------------------

function renderCueLists(ctx, lists) {
  if (!lists.length) {
    fill(parts.cueLists, el("p.empty", {}, t("show.no_cue_lists")));
    return;
  }
  if (parts.cueLists.querySelector(".empty")) fill(parts.cueLists);
  reconcile(
    parts.cueLists,
    lists,
    (list) => list.name,
    (list) => createCueList(ctx, list.name),
    (node, list) => updateCueList(ctx, node, list),
  );
}

function createCueList(ctx, name) {
  const node = el("div.card.cuelist", { dataset: { cuelist: name } });
  node.title_ = el("h2");
  node.paused = el("span.badge.warn", { hidden: true });
  node.next = el("p.next");
  node.last = el("p.last");
  node.cues = el("ol.cues");
  node.hint = el("p.hint");
  const side = el("div.transport", {}, node.next, node.last);
  if (ctx.may("operator")) {
    node.go = el("button.go", {
      type: "button",
      dataset: { cmd: "go", cuelist: name },
      onclick: () => ctx.command("go", { cue_list: name }, "GO"),
    });
    node.back = el("button.back", {
      type: "button",
      dataset: { cmd: "back", cuelist: name },
      onclick: () => ctx.command("back", { cue_list: name }, t("btn.back")),
    });
    side.prepend(node.go, node.back);
  }
  node.append(
    el("div.card-head", {}, node.title_, node.paused),
    el("div.cuelist-body", {}, el("div.cue-column", {}, node.cues, node.hint), side),
  );
  return node;
}

function updateCueList(ctx, node, { name, data }) {
  const cues = data.cues || [];
  const cueName = (id) => {
    const cue = cues.find((c) => c.id === id);
    return cue ? `${cue.id} · ${cue.name}` : String(id);
  };
  setText(node.title_, t("show.cue_list", { name }));
  node.paused.hidden = !data.paused;
  setText(node.paused, t("show.paused"));
  setText(node.next, data.standby != null ? t("show.next", { cue: cueName(data.standby) }) : t("show.next_none"));
  setText(node.last, data.last != null ? t("show.last_fired", { cue: cueName(data.last) }) : t("show.last_none"));
  if (node.go) {
    setText(node.go, t("btn.go"));
    setText(node.back, t("btn.back"));
    node.go.disabled = data.standby == null;
    setText(node.hint, t("show.goto_hint"));
  }
  const operator = ctx.may("operator");
  reconcile(
    node.cues,
    cues.map((cue, index) => ({ ...cue, index })),
    (cue) => cue.id,
    (cue) => createCue(ctx, name, cue, operator),
    (row, cue) => {
      setText(row.cueName, cue.name);
      toggle(row, "standby", cue.id === data.standby);
      toggle(row, "last", cue.id === data.last);
      toggle(row, "done", typeof data.playhead === "number" && cue.index < data.playhead);
      const tags = [];
      if (cue.id === data.standby) tags.push(t("show.standby"));
      if (cue.id === data.last) tags.push(t("show.last"));
      setText(row.tag, tags.join(" · "));
      row.setAttribute("aria-current", cue.id === data.standby ? "step" : "false");
    },
  );
}

function createCue(ctx, list, cue, operator) {
  const row = el("li.cue", { dataset: { cue: cue.id } });
  row.cueName = el("span.cue-name");
  row.tag = el("span.cue-tag");
  const content = [el("span.cue-id", {}, cue.id), row.cueName, row.tag];
  if (operator) {
    // tapping a cue puts the playhead on it (it becomes standby); it fires nothing
    row.append(
      el(
        "button.cue-button",
        {
          type: "button",
          dataset: { cmd: "playhead" },
          onclick: () => ctx.command("playhead", { cue: cue.id, cue_list: list }, `${t("show.standby")} ${cue.id}`),
        },
        content,
      ),
    );
  } else {
    row.append(el("div.cue-button", {}, content));
  }
  return row;
}

// --- state machines, timelines, variables -----------------------------------------------------

function emptyOr(container, items, key) {
  if (items.length) {
    container.querySelector(":scope > .empty")?.remove();
    return false;
  }
  fill(container, el("p.empty", {}, t(key)));
  return true;
}

function renderStates(ctx, machines) {
  if (emptyOr(parts.states, machines, "show.no_states")) return;
  reconcile(
    parts.states,
    machines,
    (m) => m.name,
    (m) => {
      const row = el("div.row.machine", { dataset: { machine: m.name } });
      row.label = el("span.row-name", {}, m.name);
      row.current = el("span.row-value");
      row.choices = el("div.choices");
      row.append(el("div.row-head", {}, row.label, row.current), row.choices);
      return row;
    },
    (row, { name, data }) => {
      setText(row.current, t("show.state_current", { state: data.state }));
      reconcile(
        row.choices,
        data.states || [],
        (state) => state,
        (state) =>
          ctx.may("operator")
            ? el(
                "button.choice",
                {
                  type: "button",
                  dataset: { state },
                  onclick: () => ctx.command("state", { machine: name, state }, `${name} → ${state}`),
                },
                state,
              )
            : el("span.choice", { dataset: { state } }, state),
        (choice, state) => {
          toggle(choice, "current", state === data.state);
          if (choice.tagName === "BUTTON") choice.setAttribute("aria-pressed", String(state === data.state));
        },
      );
    },
  );
}

function renderTimelines(timelines) {
  if (emptyOr(parts.timelines, timelines, "show.no_timelines")) return;
  reconcile(
    parts.timelines,
    timelines,
    (tl) => tl.name,
    (tl) => {
      const row = el("div.row.timeline", { dataset: { timeline: tl.name } });
      row.state = el("span.badge");
      row.position = el("span.row-value.mono");
      row.append(el("div.row-head", {}, el("span.row-name", {}, tl.name), row.state, row.position));
      return row;
    },
    (row, { data }) => {
      const word = data.paused ? "paused" : data.playing ? "playing" : "stopped";
      setText(row.state, t(`show.timeline_${word}`));
      row.state.className = `badge ${word === "playing" ? "good" : word === "paused" ? "warn" : "quiet"}`;
      setText(row.position, t("show.timeline_position", { s: Number(data.position || 0).toFixed(1) }));
    },
  );
}

function renderVariables(ctx, variables) {
  if (emptyOr(parts.variables, variables, "show.no_variables")) return;
  reconcile(
    parts.variables,
    variables,
    (v) => v.name,
    (v) => {
      const row = el("div.row.variable", { dataset: { variable: v.name } });
      row.value = el("span.row-value.mono");
      row.append(el("div.row-head", {}, el("span.row-name", {}, v.name), row.value));
      if (ctx.may("operator")) {
        row.input = el("input", { name: `var-${v.name}`, autocomplete: "off" });
        row.set = el("button", { type: "submit", dataset: { cmd: "var" } });
        const form = el("form.var-form", {}, row.input, row.set);
        form.addEventListener("submit", async (event) => {
          event.preventDefault();
          // sent as typed: the server turns it into the variable's own type, or says why it cannot
          const reply = await ctx.command("var", { name: v.name, value: row.input.value }, v.name);
          if (reply?.status === "ok") row.input.value = "";
        });
        row.append(form);
      }
      return row;
    },
    (row, { name, data }) => {
      setText(row.value, showValue(data.value));
      if (row.input) {
        row.input.placeholder = t("show.var_value", { name });
        setText(row.set, t("btn.set"));
      }
    },
  );
}

// --- the audience's phones ------------------------------------------------------------------------

function renderAudience(ctx, audiences) {
  parts.audience.closest(".card").hidden = !audiences.length; // only where the exhibit has an audience
  reconcile(
    parts.audience,
    audiences,
    (a) => a.name,
    (a) => {
      const row = el("div.row.audience", { dataset: { audience: a.name } });
      row.count = el("span.row-value.mono.audience-count");
      row.paused = el("span.badge.warn", { hidden: true });
      row.votes = el("p.audience-votes");
      row.append(el("div.row-head", {}, el("span.row-name", {}, a.name), row.paused, row.count), row.votes);
      if (ctx.may("operator")) {
        row.toggle = el("button", {
          type: "button",
          dataset: { cmd: "audience/pause", audience: a.name },
          onclick: () => {
            const paused = !row.toggle.classList.contains("active");
            const label = t(paused ? "btn.audience_pause" : "btn.audience_resume");
            ctx.command("audience/pause", { sensor: a.name, paused }, label);
          },
        });
        row.append(row.toggle);
      }
      return row;
    },
    (row, { data }) => {
      setText(row.count, t("show.audience_phones", { n: data.count ?? 0 }));
      row.paused.hidden = !data.paused;
      setText(row.paused, t("show.audience_paused"));
      const votes = Object.entries(data.votes || {}).map(([name, vote]) =>
        t(vote.open ? "show.audience_vote_open" : "show.audience_vote_closed", {
          name,
          votes: vote.votes,
          leader: vote.leader || "–",
        }),
      );
      setText(row.votes, votes.join(" · "));
      if (row.toggle) {
        setText(row.toggle, t(data.paused ? "btn.audience_resume" : "btn.audience_pause"));
        toggle(row.toggle, "active", Boolean(data.paused));
      }
    },
  );
}

function renderSchedule(schedule) {
  if (!schedule) {
    const text = t("show.no_schedule");
    if (parts.schedule.dataset.signature !== text) fill(parts.schedule, el("p.empty", {}, text));
    parts.schedule.dataset.signature = text;
    return;
  }
  const seconds = (Date.parse(schedule.next_change) - Date.now()) / 1000;
  const when = venueTime(schedule.next_change);
  const sentence = schedule.opens
    ? t("show.opens_at", { when, rel: relative(seconds) })
    : t("show.closes_at", { when, rel: relative(seconds) });
  const signature = `${schedule.open}|${sentence}`;
  if (parts.schedule.dataset.signature === signature) return;
  parts.schedule.dataset.signature = signature;
  fill(
    parts.schedule,
    el(`p.open-state.${schedule.open ? "good" : "quiet"}`, {}, t(schedule.open ? "show.open_now" : "show.closed_now")),
    el("p.next-change", {}, sentence),
  );
}

/**
 * The time of an ISO timestamp as the venue's clocks show it ("09:00", or "5 Dec 09:00" on another
 * day): the exhibit's opening hours are in its own time zone, whatever the tablet's is.
 */
function venueTime(iso) {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(iso);
  if (!match) return clockTime(Date.parse(iso) / 1000, false);
  const [, year, month, day, hour, minute, zone] = match;
  let offset = 0;
  if (zone && zone !== "Z") {
    const sign = zone[0] === "-" ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    offset = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2)));
  } else if (!zone) {
    offset = -new Date().getTimezoneOffset();
  }
  const venueToday = new Date(Date.now() + offset * 60_000).toISOString().slice(0, 10);
  const time = `${hour}:${minute}`;
  if (venueToday === `${year}-${month}-${day}`) return time;
  const date = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
  const locale = lang() === "zh" ? "zh-CN" : "en-GB";
  const dayText = date.toLocaleDateString(locale, { timeZone: "UTC", weekday: "short", month: "short", day: "numeric" });
  return `${dayText} ${time}`;
}
