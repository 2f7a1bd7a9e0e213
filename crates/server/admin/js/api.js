// The console's only way to the server: the public /api/v1, with the same tokens as any
// client. The access token lives in this module's memory; the refresh token in the tab's
// sessionStorage, so a reload keeps the session and closing the tab ends it. Each refresh
// spends the refresh token and stores the new one; a 401 is refreshed once and retried.

const REFRESH_KEY = "plinth.console.refresh";
const TAB_KEY = "plinth.console.tab";
const BASE = "/api/v1";
/** How long a tab waits for a live tab to claim the id it found in its sessionStorage. */
const COPY_CHECK_MS = 150;

let access = null;
let accessUntil = 0;
let refreshing = null;
let user = null;
const listeners = new Set();

/** An error answer: the envelope's code, message and per-field details. */
export class ApiError extends Error {
  constructor(status, error) {
    super((error && error.message) || `request failed (${status})`);
    this.status = status;
    this.code = (error && error.code) || "NETWORK";
    this.details = (error && error.details) || [];
    this.requestId = error && error.request_id;
  }
}

/** The signed-in account (`GET /auth/me`), or null. */
export function currentUser() {
  return user;
}

export function isAdmin() {
  return !!user && user.role === "admin";
}

/** Called with the new user (or null) whenever the session starts or ends. */
export function onSession(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function setSession(u) {
  user = u;
  for (const fn of listeners) fn(u);
}

function keep(tokens) {
  access = tokens.access_token;
  accessUntil = Date.now() + (tokens.expires_in - 30) * 1000;
  try {
    sessionStorage.setItem(REFRESH_KEY, tokens.refresh_token);
  } catch (_) {
    // Storage refused (private mode): the session lasts as long as the page.
  }
}

function forget() {
  access = null;
  accessUntil = 0;
  try {
    sessionStorage.removeItem(REFRESH_KEY);
  } catch (_) {
    // nothing kept
  }
  setSession(null);
}

function storedRefresh() {
  try {
    return sessionStorage.getItem(REFRESH_KEY);
  } catch (_) {
    return null;
  }
}

/**
 * Spends the refresh token for a new pair, one refresh at a time: every caller that needs
 * one while it runs waits for the same answer, so a page's parallel requests never spend
 * one token twice (the server would take that for theft and end the session). Answers
 * "ok", "refused" (the server said no: the session is over and forgotten) or "failed"
 * (no answer, or a passing error: the session is kept for the next try).
 */
async function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const token = storedRefresh();
      if (!token) return "refused";
      const res = await fetch(BASE + "/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: token }),
      }).catch(() => null);
      if (res && (res.status === 401 || res.status === 400)) {
        forget();
        return "refused";
      }
      if (!res || !res.ok) return "failed";
      keep((await res.json()).data);
      return "ok";
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** A valid access token, refreshed first when it is about to expire; null when signed out. */
export async function accessToken() {
  if (access && Date.now() < accessUntil) return access;
  await refresh();
  return access;
}

// A copied tab (the browser's "duplicate tab", or window.open) starts with a copy of its
// opener's sessionStorage, refresh token included. Two tabs spending one refresh token is
// what the server's reuse detection punishes: it revokes the family and both tabs are
// signed out. So every tab keeps an id beside the token and answers, on a channel of this
// origin, when another asks for its id; a tab that finds its inherited id still answered
// for is a copy, and drops the token instead of spending it.
const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel("plinth.console") : null;
let tabId = null;
if (channel) {
  channel.addEventListener("message", (e) => {
    if (tabId && e.data && e.data.ask === tabId) channel.postMessage({ taken: tabId });
  });
}

function newTabId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Takes this tab's id: the inherited one unless a live tab holds it. True for a copy. */
async function claimTab() {
  let inherited = null;
  try {
    inherited = sessionStorage.getItem(TAB_KEY);
  } catch (_) {
    // no storage: nothing was inherited either
  }
  const copy = !!inherited && !!channel && (await answered(inherited));
  tabId = copy || !inherited ? newTabId() : inherited;
  try {
    sessionStorage.setItem(TAB_KEY, tabId);
  } catch (_) {
    // nothing kept, nothing to copy
  }
  return copy;
}

function answered(id) {
  return new Promise((resolve) => {
    const finish = (answer) => {
      clearTimeout(timer);
      channel.removeEventListener("message", onAnswer);
      resolve(answer);
    };
    const onAnswer = (e) => {
      if (e.data && e.data.taken === id) finish(true);
    };
    const timer = setTimeout(() => finish(false), COPY_CHECK_MS);
    channel.addEventListener("message", onAnswer);
    channel.postMessage({ ask: id });
  });
}

function urlOf(path, query) {
  let url = BASE + (path.startsWith("/") ? path : "/" + path);
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === "") continue;
      if (Array.isArray(v)) v.forEach((x) => params.append(k, x));
      else params.append(k, String(v));
    }
    const qs = params.toString();
    if (qs) url += "?" + qs;
  }
  return url;
}

/**
 * One request. `path` is under /api/v1 ("/book/123" or "book/123"). Options: `query`
 * (object), `body` (JSON), `form` (FormData, sent as multipart), `headers`, `raw` (answer
 * the Response itself). Resolves to {status, data, page, etag, location}; rejects with
 * ApiError on an error answer.
 */
export async function api(method, path, opts = {}) {
  let sent = null;
  const send = async () => {
    const headers = new Headers(opts.headers || {});
    const token = await accessToken();
    sent = token;
    if (token) headers.set("Authorization", "Bearer " + token);
    let body;
    if (opts.form) body = opts.form;
    else if (opts.body !== undefined) {
      headers.set("Content-Type", "application/json");
      body = JSON.stringify(opts.body);
    }
    return fetch(urlOf(path, opts.query), { method, headers, body, signal: opts.signal });
  };
  let res;
  let renewal = null;
  try {
    res = await send();
    if (res.status === 401 && sent) {
      // Another request may have refreshed meanwhile: then only retry with its token.
      renewal = access && access !== sent ? "ok" : await refresh();
      if (renewal === "ok") res = await send();
    }
  } catch (e) {
    if (e && e.name === "AbortError") throw e;
    throw new ApiError(0, { code: "NETWORK", message: "the server could not be reached" });
  }
  if (renewal === "failed") {
    // The refresh got no answer: the session may well be alive, so it is kept.
    throw new ApiError(0, { code: "NETWORK", message: "the session could not be renewed; try again" });
  }
  if (opts.raw && res.ok) return res;
  const text = res.status === 204 ? "" : await res.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch (_) {
      json = null;
    }
  }
  if (!res.ok) {
    if (res.status === 401 && user) forget();
    throw new ApiError(res.status, json && json.error);
  }
  return {
    status: res.status,
    data: json ? json.data : null,
    page: json ? json.page : undefined,
    etag: res.headers.get("ETag"),
    location: res.headers.get("Location"),
  };
}

async function start(tokens) {
  keep(tokens);
  const me = await api("GET", "/auth/me");
  setSession(me.data);
  return me.data;
}

/**
 * Signs in with a password. Resolves to {user} or, when the account has a second factor,
 * {mfaToken} for `signInMfa`.
 */
export async function signIn(email, password) {
  const r = await api("POST", "/auth/login", { body: { email, password } });
  if (r.data && r.data.mfa_required) return { mfaToken: r.data.mfa_token };
  return { user: await start(r.data) };
}

/** The second step of a sign-in: the TOTP code (or a recovery code). */
export async function signInMfa(mfaToken, code) {
  const r = await api("POST", "/auth/login/mfa", { body: { mfa_token: mfaToken, code } });
  return { user: await start(r.data) };
}

/** Revokes the refresh token's family on the server, then forgets both tokens. */
export async function signOut() {
  const token = storedRefresh();
  if (token) {
    await fetch(BASE + "/auth/logout", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: token }),
    }).catch(() => null);
  }
  forget();
}

/**
 * Picks the session up again after a reload, from the tab's refresh token; a copied tab
 * (see claimTab) drops the token it inherited and starts signed out.
 */
export async function resume() {
  if (await claimTab()) {
    forget();
    return null;
  }
  if (!storedRefresh()) return null;
  if ((await refresh()) !== "ok") return null;
  try {
    const me = await api("GET", "/auth/me");
    setSession(me.data);
    return me.data;
  } catch (_) {
    return null;
  }
}

/** A change-feed ticket for EventSource (which cannot send a header). */
export async function ticket() {
  const r = await api("POST", "/events/ticket");
  return r.data.ticket;
}
