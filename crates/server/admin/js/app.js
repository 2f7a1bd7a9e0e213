// The console's shell: hash routes, the navigation (admin pages shown to admins only),
// sign-in and sign-out. Each page is a module under pages/ whose default export
// `render(ctx)` fills ctx.main; see ARCHITECTURE.md for the context it receives.

import * as api from "./api.js";
import { h, clear, announce, notice, errorText, field } from "./ui.js";

/** Routes, tried in order. `admin`: admins only (hidden from the menu, refused if forced). */
const ROUTES = [
  { path: /^\/$/, href: "#/", nav: "Models", page: () => import("./pages/models.js") },
  { path: /^\/m\/([^/]+)$/, params: ["model"], page: () => import("./pages/records.js") },
  { path: /^\/m\/([^/]+)\/new$/, params: ["model"], page: () => import("./pages/record.js") },
  { path: /^\/m\/([^/]+)\/([^/]+)\/history$/, params: ["model", "id"], page: () => import("./pages/history.js") },
  { path: /^\/m\/([^/]+)\/([^/]+)$/, params: ["model", "id"], page: () => import("./pages/record.js") },
  { path: /^\/keys$/, href: "#/keys", nav: "API keys", page: () => import("./pages/keys.js") },
  { path: /^\/users$/, href: "#/users", nav: "Users", admin: true, page: () => import("./pages/users.js") },
  { path: /^\/audit$/, href: "#/audit", nav: "Audit", admin: true, page: () => import("./pages/audit.js") },
  { path: /^\/flags$/, href: "#/flags", nav: "Flags", admin: true, page: () => import("./pages/flags.js") },
  { path: /^\/alerts$/, href: "#/alerts", nav: "Alerts", admin: true, page: () => import("./pages/alerts.js") },
  { path: /^\/metrics$/, href: "#/metrics", nav: "Metrics", admin: true, page: () => import("./pages/metrics.js") },
];

const main = document.getElementById("main");
let cleanups = [];
let rendering = 0;

/** The hash as {path, query}: "#/m/book?q=x" → {path: "/m/book", query: URLSearchParams}. */
function location() {
  const raw = window.location.hash.replace(/^#/, "") || "/";
  const [path, qs] = raw.split("?", 2);
  return { path: path || "/", query: new URLSearchParams(qs || "") };
}

/** Goes to `hash` ("#/m/book"); `replace` keeps the history entry. */
export function navigate(hash, replace = false) {
  if (replace) {
    history.replaceState(null, "", hash);
    route();
  } else if (window.location.hash === hash) {
    route();
  } else {
    window.location.hash = hash;
  }
}

function renderNav() {
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  const user = api.currentUser();
  const { path } = location();
  clear(nav);
  clear(who);
  if (!user) return;
  const items = ROUTES.filter((r) => r.nav && (!r.admin || api.isAdmin()));
  nav.append(
    h(
      "ul",
      null,
      items.map((r) => {
        const current = r.path.test(path) || (r.nav === "Models" && path.startsWith("/m/"));
        return h("li", null, h("a", { href: r.href, "aria-current": current ? "page" : null }, r.nav));
      }),
    ),
  );
  who.append(
    h("span", { class: "me" }, `${user.email} (${user.role})`),
    h("button", { type: "button", id: "sign-out", on: { click: signOut } }, "Sign out"),
  );
}

async function signOut() {
  await api.signOut();
  announce("Signed out");
  navigate("#/signin");
}

/** Runs and forgets the previous page's cleanups (open streams, timers). */
function leave() {
  for (const fn of cleanups) {
    try {
      fn();
    } catch (_) {
      // a cleanup that fails must not stop the next page
    }
  }
  cleanups = [];
}

function setTitle(title) {
  document.title = title ? `${title} · Plinth console` : "Plinth console";
}

/**
 * Focus to the new page's heading, so keyboard and screen-reader users start at its top;
 * unless they already moved into the page while it was still loading (typing in its
 * search box, say): that focus is theirs, since everything in main is the new page's.
 */
function focusMain() {
  const active = document.activeElement;
  if (active && active !== main && main.contains(active)) return;
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  } else {
    main.focus();
  }
}

async function route() {
  const ticket = ++rendering;
  leave();
  const { path, query } = location();
  if (path === "/signin") {
    renderNav();
    return signInPage(query);
  }
  if (!api.currentUser()) {
    navigate("#/signin?next=" + encodeURIComponent(path + (query.toString() ? "?" + query : "")), true);
    return;
  }
  renderNav();
  const entry = ROUTES.find((r) => r.path.test(path));
  if (!entry) {
    setTitle("Not found");
    clear(main, h("h1", null, "Not found"), h("p", null, "No page here. "), h("a", { href: "#/" }, "Back to the models"));
    return focusMain();
  }
  if (entry.admin && !api.isAdmin()) {
    setTitle("Not allowed");
    clear(
      main,
      h("h1", null, "Not allowed"),
      notice("error", h("p", { id: "refused" }, "This page needs the admin role; your account is a " + api.currentUser().role + ".")),
      h("a", { href: "#/" }, "Back to the models"),
    );
    return focusMain();
  }
  const match = entry.path.exec(path);
  const params = {};
  try {
    (entry.params || []).forEach((name, i) => {
      params[name] = decodeURIComponent(match[i + 1]);
    });
  } catch (_) {
    // A malformed escape ("%E0") in a typed or pasted address names nothing.
    setTitle("Not found");
    clear(main, h("h1", null, "Not found"), h("p", null, "This address is malformed. "), h("a", { href: "#/" }, "Back to the models"));
    return focusMain();
  }
  clear(main, h("p", { class: "loading" }, "Loading…"));
  const ctx = {
    main,
    params,
    query,
    api,
    navigate,
    setTitle,
    onCleanup: (fn) => cleanups.push(fn),
    /** Whether this page is still the one shown (false once the user moved on). */
    current: () => ticket === rendering,
  };
  try {
    const mod = await entry.page();
    if (ticket !== rendering) return;
    clear(main);
    await mod.default(ctx);
  } catch (err) {
    if (ticket !== rendering) return;
    if (err && err.status === 401) {
      navigate("#/signin?next=" + encodeURIComponent(path), true);
      return;
    }
    clear(main, h("h1", null, "Something went wrong"), notice("error", h("p", null, errorText(err))));
  }
  if (ticket === rendering) focusMain();
}

function signInPage(query) {
  setTitle("Sign in");
  const next = query.get("next") || "/";
  const status = h("div", { id: "signin-status" });
  const email = h("input", { name: "email", type: "email", autocomplete: "username", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "card narrow", id: "signin-form", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to Plinth"),
    status,
    field("Email", email),
    field("Password", password),
    h("div", { class: "actions" }, submit),
  );
  const done = () => {
    announce("Signed in");
    navigate("#" + (next.startsWith("/") && next !== "/signin" ? next : "/"), true);
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    clear(status);
    try {
      const r = await api.signIn(email.value.trim(), password.value);
      if (r.mfaToken) return mfaStep(r.mfaToken, done);
      done();
    } catch (err) {
      clear(status, notice("error", h("p", null, errorText(err))));
      password.focus();
    } finally {
      submit.disabled = false;
    }
  });
  clear(main, form);
  email.focus();
}

function mfaStep(mfaToken, done) {
  const status = h("div", { id: "mfa-status" });
  const code = h("input", {
    name: "code",
    inputmode: "numeric",
    autocomplete: "one-time-code",
    required: true,
  });
  const submit = h("button", { type: "submit", class: "primary" }, "Verify");
  const form = h(
    "form",
    { class: "card narrow", id: "mfa-form", "aria-labelledby": "mfa-title" },
    h("h1", { id: "mfa-title" }, "Two-factor code"),
    h("p", null, "Enter the code from your authenticator app, or a recovery code."),
    status,
    field("Code", code),
    h("div", { class: "actions" }, submit),
  );
  const again = h("button", { type: "button", class: "link", on: { click: () => route() } }, "Start again with the password");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    try {
      await api.signInMfa(mfaToken, code.value.trim());
      done();
    } catch (err) {
      // A wrong code leaves the step open (the server voids it only after several, or
      // when it expires): say so at the field and let the user type the next code, with a
      // way back to the password for a step that is spent.
      clear(status, notice("error", h("p", null, errorText(err)), h("p", null, again)));
      code.value = "";
      code.setAttribute("aria-invalid", "true");
      code.focus();
    } finally {
      submit.disabled = false;
    }
  });
  clear(main, form);
  code.focus();
}

// A session that ends under a page (a refresh refused, the session revoked elsewhere)
// leaves the page unable to do anything: go to the sign-in, which comes back here after.
let signedIn = false;
api.onSession((user) => {
  const was = signedIn;
  signedIn = !!user;
  renderNav();
  if (was && !user && location().path !== "/signin") route();
});

document.getElementById("skip").addEventListener("click", (e) => {
  e.preventDefault();
  focusMain();
});

window.addEventListener("hashchange", route);

(async () => {
  await api.resume();
  route();
})();
