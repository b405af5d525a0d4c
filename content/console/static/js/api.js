// The console's side of the HTTP + WebSocket contract: session, reading endpoints, commands (over
// the WebSocket when it is up, else POST with the CSRF token) and the live event stream.

const ROLES = ["viewer", "operator", "admin"];
const COMMAND_TIMEOUT_MS = 10_000;
const CLOSE_LOGGED_OUT = 4401; // the server ends a socket whose session ended (sign-out elsewhere, user removed)

export const session = { user: null, role: null, csrf: null };

/** Whether the signed-in user's role is at least ``role``. */
export function may(role) {
  return session.role !== null && ROLES.indexOf(session.role) >= ROLES.indexOf(role);
}

export class HttpError extends Error {
  constructor(status, body) {
    super(body?.error || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function request(method, path, body, extraHeaders = {}) {
  const headers = { Accept: "application/json", ...extraHeaders };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw new HttpError(response.status, data);
  return data;
}

export const getJSON = (path) => request("GET", path);
export const postJSON = (path, body = {}) => request("POST", path, body);

/** ``PUT`` a file's bytes as they are (an upload); resolves with the JSON answer, throws HttpError. */
export async function putBytes(path, blob) {
  const response = await fetch(path, {
    method: "PUT",
    headers: { Accept: "application/json", "Content-Type": "application/octet-stream", "X-CSRF-Token": session.csrf },
    credentials: "same-origin",
    cache: "no-store",
    body: blob,
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new HttpError(response.status, data);
  return data;
}

export async function login(user, password) {
  const data = await request("POST", "/api/v1/login", { user, password });
  Object.assign(session, { user: data.user, role: data.role, csrf: data.csrf });
  return data;
}

/** The current session, or null when there is none (not signed in, or it ended). */
export async function restoreSession() {
  try {
    const data = await getJSON("/api/v1/session");
    Object.assign(session, { user: data.user, role: data.role, csrf: data.csrf });
    return data;
  } catch (error) {
    if (error instanceof HttpError && (error.status === 401 || error.status === 403)) return null;
    throw error;
  }
}

export async function logout() {
  try {
    await request("POST", "/api/v1/logout", {});
  } finally {
    Object.assign(session, { user: null, role: null, csrf: null });
  }
}

/**
 * The live stream: protocol events in, watch/unwatch/command out. Reconnects with back-off (0.5 s
 * doubling to 10 s, with jitter) and never reloads the page.
 */
export class Live {
  constructor({ onEvent, onStatus, onClosedForGood }) {
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.onClosedForGood = onClosedForGood;
    this.socket = null;
    this.attempt = 0;
    this.watched = new Map(); // signal -> the views that want it
    this.pending = new Map();
    this.nextId = 1;
    this.stopped = true;
    this.retryAt = null;
    this.timer = null;
  }

  get open() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, "sign out");
    this.socket = null;
  }

  connect() {
    clearTimeout(this.timer);
    this.retryAt = null;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/api/v1/ws`);
    this.socket = socket;
    socket.addEventListener("open", () => {
      if (this.watched.size) this.send({ op: "watch", signals: [...this.watched.keys()] });
    });
    socket.addEventListener("message", (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (event.topic === "hello") {
        this.attempt = 0;
        this.onStatus(true);
      }
      if (event.topic === "reply" && event.data) this.settle(event.data.id, event.data);
      this.onEvent(event);
    });
    socket.addEventListener("close", (event) => this.lost(socket, event.code));
    socket.addEventListener("error", () => socket.close());
  }

  async lost(socket, code) {
    if (socket !== this.socket) return;
    this.socket = null;
    for (const id of [...this.pending.keys()]) this.settle(id, null);
    if (this.stopped) return;
    this.onStatus(false);
    if (code === CLOSE_LOGGED_OUT) {
      this.stopped = true;
      this.onClosedForGood();
      return;
    }
    // A refused upgrade looks like any other drop; ask whether the session itself ended.
    if (this.attempt > 0 && (await restoreSession().catch(() => true)) === null) {
      this.stopped = true;
      this.onClosedForGood();
      return;
    }
    const delay = Math.min(10_000, 500 * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.timer = setTimeout(() => this.connect(), delay);
  }

  send(message) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  /** Ask for ``signal/<name>`` pushes on behalf of ``owner`` (a view); kept across reconnections. */
  watch(names, owner = "default") {
    const fresh = [];
    for (const name of names) {
      if (!this.watched.has(name)) {
        this.watched.set(name, new Set());
        fresh.push(name);
      }
      this.watched.get(name).add(owner);
    }
    if (fresh.length) this.send({ op: "watch", signals: fresh });
  }

  /** Stop ``owner``'s interest; the server stops pushing a signal once nobody here wants it. */
  unwatch(names, owner = "default") {
    const gone = [];
    for (const name of names) {
      const owners = this.watched.get(name);
      if (!owners) continue;
      owners.delete(owner);
      if (!owners.size) {
        this.watched.delete(name);
        gone.push(name);
      }
    }
    if (gone.length) this.send({ op: "unwatch", signals: gone });
  }

  /** A command over the socket; resolves with the reply's data, or null if the connection dropped. */
  command(name, params) {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(id, null), COMMAND_TIMEOUT_MS);
      this.pending.set(id, { resolve, timer });
      this.send({ op: "command", id, name, params, csrf: session.csrf });
    });
  }

  settle(id, reply) {
    const waiting = this.pending.get(id);
    if (!waiting) return;
    this.pending.delete(id);
    clearTimeout(waiting.timer);
    waiting.resolve(reply);
  }
}

/**
 * Run a command: over the WebSocket when it is up (the fast path), else ``POST /api/v1/<name>``.
 * Resolves with ``{status: "ok", data}`` or ``{status: "error", error, code}``; null when no reply came.
 */
export async function runCommand(live, name, params = {}) {
  if (live?.open) return live.command(name, params);
  try {
    return await request("POST", `/api/v1/${name}`, params);
  } catch (error) {
    if (error instanceof HttpError && error.body?.status === "error") return error.body;
    if (error instanceof HttpError) return { status: "error", error: error.message, code: String(error.status) };
    return null;
  }
}
