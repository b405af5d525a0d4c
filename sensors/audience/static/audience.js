/* Audience page: what a visitor's phone shows to take part in an exhibit (no app, no login).
 *
 * Talks to the audience server over one WebSocket ("ws" next to this page); the protocol is defined in
 * sensors/audience/protocol.py. Server to phone: hello, state, voted, full. Phone to server: tap, vote,
 * slide, motion, lang. Nothing is sent before "hello", nothing while the show has paused audience input,
 * and never faster than the server allows (10 messages/s; taps 8/s, slider 10/s, motion 5/s).
 *
 * Plain script, no framework, no build step. The only global is window.audience = {state, send}.
 */
(() => {
  "use strict";

  // ---- Limits and timings ----
  const SEND_PER_S = 10;        // the server's limit per phone, all messages together
  const TAP_PER_S = 8;          // taps (tap pads and buttons together); extra taps are ignored
  const SLIDE_MS = 100;         // slider: at most 10 messages a second
  const MOTION_MS = 200;        // motion: averaged over 200 ms, at most 5 messages a second
  const MOTION_WAIT_MS = 3000;  // no motion data after this long: the phone has no usable sensor
  const BACKOFF_MIN_MS = 500;   // reconnecting: 0.5 s doubling to 10 s, with jitter
  const BACKOFF_MAX_MS = 10000;
  const FULL_RETRY_MS = 15000;  // the room is full: try again after 15 s
  const SILENCE_MS = 10000;     // the server sends state every 2 s; this long without a word: reconnect
  const BUSY = "busy";          // send()'s answer when the per-second limit is reached

  // ---- Every visible text: key -> [zh-Hans, en] ----
  const TEXT = {
    title: ["一起参与", "Join in"],
    connecting: ["正在连接…", "Connecting…"],
    reconnecting: ["正在重新连接…", "Reconnecting…"],
    empty: ["暂时没有可参与的互动", "Nothing to take part in right now"],
    paused: ["演出暂停了观众互动", "The show has paused audience input"],
    full: ["人数已满，稍后自动重试", "The room is full — trying again shortly"],
    count: ["现场 {n} 部手机", "{n} phones here"],
    countOne: ["现场 {n} 部手机", "{n} phone here"],
    released: ["你已放飞 {n} 个", "You released {n}"],
    closed: ["投票未开放", "Voting is closed"],
    thanks: ["谢谢你的投票", "Thank you for voting"],
    again: ["你已经投过票了", "You have already voted"],
    results: ["结果", "Results"],
    enableMotion: ["开启体感", "Enable motion"],
    motionOn: ["体感已开启，请轻轻晃动手机", "Motion on — gently move your phone"],
    motionUnavailable: ["抱歉，这部手机无法使用体感。", "Sorry, motion isn't available on this phone."],
    motionDenied: ["未获得体感权限。", "Motion access was not allowed."],
    motionInsecure: ["此页面未加密（非 https），手机不提供体感数据。", "Motion needs a secure (https) page."],
    switchLang: ["切换语言", "Switch language"],
  };

  // ---- State (exposed for debugging and tests as window.audience.state) ----
  const state = {
    lang: (navigator.language || "").toLowerCase().startsWith("zh") ? "zh" : "en",   // follows the phone
    ready: false,       // a hello arrived on the current connection
    greeted: false,     // a hello ever arrived
    paused: false,
    full: false,
    count: null,        // phones connected
    title: null,        // {zh, en} from hello
    offers: [],         // from hello, in order
    open: {},           // vote id -> open?
    results: {},        // vote id -> {choice id -> share 0..1}
    voted: {},          // vote id -> this phone's choice this round, or null
    pending: {},        // vote id -> choice sent, no answer yet
    note: {},           // vote id -> "again" | "closed" (a refused vote)
    taps: {},           // tap id -> taps sent from this phone
    slider: {},         // slider id -> last value
    motion: { on: false, energy: 0, status: null },
  };

  let ws = null;            // the current WebSocket, or null
  let attempt = 0;          // failed connections in a row (drives the backoff)
  let retryTimer = 0;
  let lastHeard = 0;        // when the server last said anything
  let sentLang = null;      // the language the server was last told
  let updaters = [];        // one function per rendered piece that refreshes it from state
  const sendLog = [];       // times of recent messages (all kinds)
  const tapLog = [];        // times of recent taps
  const motionLog = [];     // times of recent motion reports (a late timer tick must not make it 6 a second)
  const sensor = { sum: 0, n: 0, gravity: null, heard: false, timer: 0, lastSent: null };

  const $ = (selector) => document.querySelector(selector);

  // ---- Language ----
  /** A text from the dictionary, with {n} filled in. */
  function t(key, n) {
    const text = TEXT[key]?.[state.lang === "zh" ? 0 : 1] ?? key;
    return n === undefined ? text : text.replace("{n}", String(n));
  }

  /** A server label {zh, en} in the page's language (falling back to the other). */
  function pick(label) {
    if (label == null) return "";
    if (typeof label !== "object") return String(label);
    return label[state.lang] ?? label.en ?? label.zh ?? "";
  }

  /** Switches the page language (header toggle or language offer). */
  function setLang(lang) {
    state.lang = lang;
    sendLang();
    refresh();
  }

  /** Tells the server the page's language, once per change (and again on every connection). */
  function sendLang() {
    if (sentLang !== state.lang && send({ t: "lang", value: state.lang }) === true) sentLang = state.lang;
  }

  // ---- Sending ----
  /** Records a message in a one-second window if fewer than perSecond are there; false if full. */
  function allow(log, perSecond) {
    const now = performance.now();
    while (log.length && now - log[0] >= 1000) log.shift();
    if (log.length >= perSecond) return false;
    log.push(now);
    return true;
  }

  /** Sends one message: true if sent, BUSY if over the per-second limit, false if it may not be sent now. */
  function send(msg) {
    if (!state.ready || state.paused || !ws || ws.readyState !== WebSocket.OPEN) return false;
    if (!allow(sendLog, SEND_PER_S)) return BUSY;
    ws.send(JSON.stringify(msg));
    return true;
  }

  /** Calls fn at most once per ms, always with the latest call last (retrying shortly if the line is busy). */
  function throttle(fn, ms) {
    let last = 0, timer = 0;
    const run = () => {
      timer = 0;
      if (fn() === BUSY) { timer = setTimeout(run, 100); return; }
      last = performance.now();
    };
    return () => {
      if (timer) return;
      const wait = last + ms - performance.now();
      if (wait <= 0) run(); else timer = setTimeout(run, wait);
    };
  }

  /** After a hello or a resume: the language, and where this phone's sliders are. */
  function resync() {
    sentLang = null;
    sendLang();
    for (const offer of state.offers) {
      const value = state.slider[offer.id];
      if (offer.type === "slider" && value !== undefined) send({ t: "slide", id: offer.id, value });
    }
  }

  /** One tap on a pad or button (capped at 8 a second) and the local count. */
  function tap(id) {
    if (!allow(tapLog, TAP_PER_S)) return;   // over 8 taps a second: ignored (the pad still animates)
    if (send({ t: "tap", id }) !== true) return;
    state.taps[id] = (state.taps[id] || 0) + 1;
    refresh();
  }

  /** Sends a vote and waits for the answer ("voted"). */
  function vote(id, choice) {
    if (send({ t: "vote", id, choice }) !== true) return;
    state.pending[id] = choice;
    delete state.note[id];
    // No answer at all (a lost message): let the visitor try again.
    setTimeout(() => { if (state.pending[id] === choice) { delete state.pending[id]; refresh(); } }, 5000);
    refresh();
  }

  // ---- Connection ----
  /** The WebSocket's URL: "ws" next to the page, ws: or wss: like the page's http: or https:. */
  function socketUrl() {
    const url = new URL("ws", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  }

  /** Opens the WebSocket (unless one is open or opening). */
  function connect() {
    clearTimeout(retryTimer);
    if (ws) return;
    let sock;
    try { sock = new WebSocket(socketUrl()); } catch { scheduleRetry(); return; }
    ws = sock;
    lastHeard = Date.now();
    sock.onmessage = (event) => { if (ws === sock) onMessage(event.data); };
    sock.onclose = (event) => { if (ws === sock) onClose(event.code); };   // an error is followed by close
  }

  /** The connection ended: try again (after 15 s if the room is full, else with backoff). */
  function onClose(code) {
    ws = null;
    state.ready = false;
    if (code === 1013) state.full = true;
    if (state.full) retryTimer = setTimeout(connect, FULL_RETRY_MS);
    else scheduleRetry();
    refresh();
  }

  /** Next try: 0.5 s, 1 s, 2 s … up to 10 s. */
  function scheduleRetry() {
    clearTimeout(retryTimer);
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
    attempt += 1;
    retryTimer = setTimeout(connect, Math.min(BACKOFF_MAX_MS, base * (0.8 + Math.random() * 0.4)));   // ±20 % jitter
  }

  /** Gives up on a connection that has gone quiet (phones on Wi-Fi often keep dead sockets). */
  function dropIfSilent() {
    if (!ws || Date.now() - lastHeard < SILENCE_MS) return;
    const sock = ws;
    onClose(0);
    try { sock.close(); } catch { /* already gone */ }
  }

  /** Back on the page (phone unlocked, tab shown): reconnect now rather than wait for the backoff. */
  function onVisible() {
    if (document.visibilityState !== "visible") return;
    dropIfSilent();
    if (!ws && !state.full) { attempt = 0; connect(); }
  }

  // ---- Messages from the server ----
  /** One message from the server (anything unexpected is ignored). */
  function onMessage(data) {
    lastHeard = Date.now();
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    const handle = msg && typeof msg === "object" && HANDLERS.get(msg.t);
    if (handle) handle(msg);
  }

  /** The room is full: say so (the close follows, and connect() tries again in 15 s). */
  function onFull() {
    Object.assign(state, { full: true, ready: false });
    refresh();
  }

  /** Connected (or reconnected): build the page from the offers, then tell the server the language. */
  function onHello(msg) {
    attempt = 0;
    Object.assign(state, { ready: true, greeted: true, full: false, pending: {}, title: msg.title || null });
    state.offers = (Array.isArray(msg.offers) ? msg.offers : []).filter((o) => o && typeof o.id === "string");
    for (const offer of state.offers) {
      if (offer.type !== "vote") continue;
      state.open[offer.id] = Boolean(offer.open);
      state.voted[offer.id] = offer.voted ?? null;
      delete state.note[offer.id];
    }
    render();
    resync();
  }

  /** Votes opened or closed, results, pause, and the phone count. */
  function onState(msg) {
    for (const [id, isOpen] of Object.entries(msg.open || {})) {
      // Closed, now open: a new round, in which this phone may vote again.
      if (isOpen && state.open[id] === false) { state.voted[id] = null; delete state.note[id]; }
      state.open[id] = Boolean(isOpen);
    }
    state.results = msg.results && typeof msg.results === "object" ? msg.results : {};
    const resumed = state.paused && !msg.paused;
    state.paused = Boolean(msg.paused);
    if (typeof msg.count === "number") state.count = msg.count;
    if (resumed) resync();
    else sendLang();   // a language change the line was too busy for
    refresh();
  }

  /** The answer to this phone's vote: taken, or refused ("closed", "again"). */
  function onVoted(msg) {
    const id = msg.id;
    delete state.pending[id];
    if (msg.ok) { state.voted[id] = msg.choice; delete state.note[id]; return refresh(); }
    state.note[id] = msg.why === "again" ? "again" : "closed";
    if (msg.why === "closed") state.open[id] = false;
    refresh();
  }

  const HANDLERS = new Map([["hello", onHello], ["state", onState], ["voted", onVoted], ["full", onFull]]);

  // ---- Rendering ----
  /** Creates an element with attributes and, optionally, text. */
  function el(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** Sets a text only when it changes (no churn, no repeated screen-reader announcements). */
  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  /** Inputs are off while not connected or while the show has paused audience input. */
  const blocked = () => !state.ready || state.paused;

  /** The offer's label as the card's heading. */
  function heading(offer, card) {
    const h2 = card.appendChild(el("h2"));
    updaters.push(() => { setText(h2, pick(offer.label)); h2.hidden = !h2.textContent; });
  }

  /** A ripple where the finger landed, and a glow (both purely visual). */
  function ripple(target, event) {
    const box = target.getBoundingClientRect();
    const ring = el("span", { class: "ripple", "aria-hidden": "true" });
    ring.style.left = `${event.clientX ? event.clientX - box.left : box.width / 2}px`;
    ring.style.top = `${event.clientY ? event.clientY - box.top : box.height / 2}px`;
    target.appendChild(ring);
    setTimeout(() => ring.remove(), 700);
    target.classList.remove("glow");
    void target.offsetWidth;   // restart the glow animation
    target.classList.add("glow");
  }

  /** "tap": a big round pad with a count of this phone's taps; "button": a large button. Both send tap. */
  function buildTap(offer, card) {
    const isPad = offer.type === "tap";
    const button = card.appendChild(el("button", { type: "button", class: isPad ? "tap" : "press", "data-offer": offer.id }));
    const label = button.appendChild(el("span"));
    const counter = isPad ? card.appendChild(el("p", { class: "note" })) : null;
    button.addEventListener("click", (event) => { ripple(button, event); tap(offer.id); });
    updaters.push(() => {
      button.disabled = blocked();
      setText(label, pick(offer.label));
      if (counter) setText(counter, t("released", state.taps[offer.id] || 0));
    });
  }

  /** "vote": one big button per choice, a line saying where the vote stands, and result bars when shown. */
  function buildVote(offer, card) {
    heading(offer, card);
    const id = offer.id;
    const choices = (Array.isArray(offer.choices) ? offer.choices : []).filter((c) => c && typeof c.id === "string");
    const list = card.appendChild(el("div", { class: "choices" }));
    const buttons = choices.map((choice) => {
      const button = list.appendChild(el("button", { type: "button", class: "choice", "data-offer": id, "data-choice": choice.id }));
      button.addEventListener("click", () => vote(id, choice.id));
      return button;
    });
    const note = card.appendChild(el("p", { class: "note", role: "status" }));
    const results = card.appendChild(el("div", { class: "results", role: "group" }));
    const rows = choices.map((choice) => {
      const row = results.appendChild(el("div", { class: "result", "data-offer": id, "data-choice": choice.id }));
      const name = row.appendChild(el("span", { class: "result-label" }));
      const pct = row.appendChild(el("span", { class: "result-pct" }));
      const fill = row.appendChild(el("span", { class: "result-bar" })).appendChild(el("span", { class: "result-fill" }));
      return { row, name, pct, fill };
    });
    updaters.push(() => {
      const mine = state.voted[id] ?? state.pending[id] ?? null;
      const refused = state.note[id];
      choices.forEach((choice, i) => {
        const chosen = choice.id === mine;
        setText(buttons[i], pick(choice.label));
        buttons[i].disabled = blocked() || !state.open[id] || mine !== null || refused === "again";
        buttons[i].classList.toggle("chosen", chosen);
        buttons[i].setAttribute("aria-pressed", String(chosen));
      });
      if (refused === "again") setText(note, t("again"));
      else if (state.voted[id] != null) setText(note, t("thanks"));
      else if (!state.open[id]) setText(note, t("closed"));
      else setText(note, "");
      const shares = state.results[id];
      results.hidden = !shares || typeof shares !== "object";
      if (results.hidden) return;
      results.setAttribute("aria-label", t("results"));
      choices.forEach((choice, i) => {
        const percent = Math.max(0, Math.min(100, Math.round(100 * (Number(shares[choice.id]) || 0))));
        setText(rows[i].name, pick(choice.label));
        setText(rows[i].pct, `${percent}%`);
        rows[i].fill.style.width = `${percent}%`;
        rows[i].row.classList.toggle("mine", choice.id === state.voted[id]);
      });
    });
  }

  /** "slider": a large range input; sends slide while moving (at most 10 a second, the final value always). */
  function buildSlider(offer, card) {
    heading(offer, card);
    const id = offer.id;
    const range = Array.isArray(offer.range) ? offer.range.map(Number) : [];
    const [low, high] = range.length === 2 && range.every(Number.isFinite) ? range : [0, 1];
    const step = Number(offer.step) > 0 ? String(offer.step) : "any";
    const input = card.appendChild(el("input", { type: "range", "data-offer": id, min: low, max: high, step }));
    input.value = String(state.slider[id] ?? (low + high) / 2);
    const push = throttle(() => send({ t: "slide", id, value: state.slider[id] }), SLIDE_MS);
    input.addEventListener("input", () => { state.slider[id] = Number(input.value); push(); });
    updaters.push(() => { input.disabled = blocked(); input.setAttribute("aria-label", pick(offer.label)); });
  }

  /** "motion": a button that turns the motion sensor on, then a live energy bar. */
  function buildMotion(offer, card) {
    heading(offer, card);
    const button = card.appendChild(el("button", { type: "button", class: "press", "data-offer": offer.id }));
    const meter = card.appendChild(el("span", { class: "meter", "aria-hidden": "true" }));
    const fill = meter.appendChild(el("span", { class: "meter-fill" }));
    const note = card.appendChild(el("p", { class: "note", role: "status" }));
    button.addEventListener("click", enableMotion);
    updaters.push(() => {
      const motion = state.motion;
      setText(button, t(motion.on ? "motionOn" : "enableMotion"));
      const impossible = motion.status === "motionUnavailable" || motion.status === "motionInsecure";
      button.disabled = blocked() || motion.on || impossible;
      button.classList.toggle("chosen", motion.on);
      meter.hidden = !motion.on;
      fill.style.transform = `scaleX(${motion.energy})`;
      setText(note, motion.status ? t(motion.status) : "");
    });
  }

  /** "language": two big buttons, the same as the header's toggle. */
  function buildLanguage(offer, card) {
    heading(offer, card);
    const row = card.appendChild(el("div", { class: "choices two" }));
    for (const [lang, name, tag] of [["zh", "中文", "zh-Hans"], ["en", "English", "en"]]) {
      const button = row.appendChild(el("button", { type: "button", class: "press", lang: tag, "data-offer": offer.id, "data-lang": lang }, name));
      button.addEventListener("click", () => setLang(lang));
      updaters.push(() => {
        button.classList.toggle("chosen", state.lang === lang);
        button.setAttribute("aria-pressed", String(state.lang === lang));
      });
    }
  }

  const BUILDERS = { tap: buildTap, button: buildTap, vote: buildVote, slider: buildSlider, motion: buildMotion, language: buildLanguage };

  /** Builds the offers from hello, in order (unknown types are skipped). */
  function render() {
    const root = $("#offers");
    root.replaceChildren();
    updaters = [];
    for (const offer of state.offers) {
      const build = BUILDERS[offer.type];
      if (!build) continue;
      const card = el("section", { class: `offer offer-${offer.type}`, "data-card": offer.id });
      build(offer, card);
      root.appendChild(card);
    }
    refresh();
  }

  /** Brings every text and control up to date with state (cheap: called on every change). */
  function refresh() {
    document.documentElement.lang = state.lang === "zh" ? "zh-Hans" : "en";
    const title = pick(state.title) || t("title");
    if (document.title !== title) document.title = title;
    setText($("#title"), title);
    for (const node of document.querySelectorAll("[data-i18n]")) setText(node, t(node.dataset.i18n));
    const toggle = $("#lang-toggle");
    toggle.setAttribute("aria-label", t("switchLang"));
    for (const span of toggle.querySelectorAll("[data-lang]")) span.classList.toggle("active", span.dataset.lang === state.lang);
    const count = state.ready && state.count != null ? t(state.count === 1 ? "countOne" : "count", state.count) : "";
    setText($("#count"), count);   // hidden while not connected (it would be stale)
    const status = !state.greeted ? t("connecting") : $("#offers").children.length ? "" : t("empty");
    setText($("#status"), state.full ? "" : status);
    $("#reconnecting").hidden = state.ready || state.full || attempt === 0;
    $("#paused").hidden = !(state.ready && state.paused);
    $("#full").hidden = !state.full;
    document.body.classList.toggle("is-paused", state.ready && state.paused);
    for (const update of updaters) update();
  }

  // ---- Motion sensor ----
  /** Asks for the sensor (iOS needs permission, from this tap), then listens to devicemotion. */
  async function enableMotion() {
    if (state.motion.on) return;
    if (!window.isSecureContext) return stopMotion("motionInsecure");   // browsers send no motion to http pages
    if (typeof DeviceMotionEvent === "undefined") return stopMotion("motionUnavailable");
    if (typeof DeviceMotionEvent.requestPermission === "function") {
      try {
        if ((await DeviceMotionEvent.requestPermission()) !== "granted") return stopMotion("motionDenied");
      } catch {
        return stopMotion("motionDenied");   // refused, or not asked from a tap
      }
    }
    Object.assign(sensor, { sum: 0, n: 0, gravity: null, heard: false, lastSent: null });
    window.addEventListener("devicemotion", onDeviceMotion);
    sensor.timer = setInterval(motionTick, MOTION_MS);
    Object.assign(state.motion, { on: true, status: null });
    setTimeout(() => { if (!sensor.heard) stopMotion("motionUnavailable"); }, MOTION_WAIT_MS);
    refresh();
  }

  /** Stops listening (if listening) and says why. */
  function stopMotion(status) {
    window.removeEventListener("devicemotion", onDeviceMotion);
    clearInterval(sensor.timer);
    Object.assign(state.motion, { on: false, energy: 0, status });
    refresh();
  }

  /** One sensor reading: energy = |acceleration without gravity| / 20 m/s², clamped to 0..1. */
  function onDeviceMotion(event) {
    const a = event.acceleration;
    let magnitude;
    if (a && Number.isFinite(a.x)) {
      magnitude = Math.hypot(a.x, a.y || 0, a.z || 0);
    } else {
      // No gravity-free reading: take off a running low-pass estimate of gravity.
      const g = event.accelerationIncludingGravity;
      if (!g || !Number.isFinite(g.x)) return;
      const now = [g.x, g.y || 0, g.z || 0];
      sensor.gravity = sensor.gravity ? sensor.gravity.map((v, i) => 0.9 * v + 0.1 * now[i]) : now;
      magnitude = Math.hypot(...now.map((v, i) => v - sensor.gravity[i]));
    }
    sensor.heard = true;
    sensor.sum += Math.min(1, magnitude / 20);
    sensor.n += 1;
  }

  /** Every 200 ms: the average energy to the bar and the server (a run of zeros is sent once). */
  function motionTick() {
    const energy = sensor.n ? Math.round((100 * sensor.sum) / sensor.n) / 100 : 0;
    sensor.sum = sensor.n = 0;
    state.motion.energy = energy;
    if (sensor.heard && !(energy === 0 && sensor.lastSent === 0) && allow(motionLog, 1000 / MOTION_MS)) {
      for (const offer of state.offers) {
        if (offer.type === "motion" && send({ t: "motion", id: offer.id, energy }) === true) sensor.lastSent = energy;
      }
    }
    refresh();
  }

  // ---- Start ----
  function start() {
    $("#lang-toggle").addEventListener("click", () => setLang(state.lang === "zh" ? "en" : "zh"));
    document.addEventListener("visibilitychange", onVisible);
    window.addEventListener("online", onVisible);
    setInterval(dropIfSilent, 2000);
    refresh();
    connect();
  }

  window.audience = { state, send };
  start();
})();
