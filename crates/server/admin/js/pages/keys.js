// API keys: the caller's own (admins may show every key), create one and see its secret
// exactly once, revoke. The secret lives only in this page's DOM: leaving the page drops it,
// and the API never answers it again.

import { h, clear, announce, notice, errorText, field, showFieldErrors, confirm, when, submitForm } from "../ui.js";
import { table } from "../paging.js";

export default async function render(ctx) {
  ctx.setTitle("API keys");
  const admin = ctx.api.isAdmin();
  const showAll = ctx.query.get("all") === "true" && admin;
  const status = h("div", { id: "keys-status" });
  const secretSlot = h("div", { id: "key-secret" });
  const list = h("div", { id: "keys-list" });
  const say = (kind, text) => clear(status, notice(kind, h("p", null, text)));

  async function load() {
    const r = await ctx.api.api("GET", "/auth/api-keys", { query: { all: showAll ? "true" : null } });
    if (!ctx.current()) return;
    const headers = ["Name", "Prefix", "Role", ...(showAll ? ["Owner"] : []), "Created", "Expires", "Last used", "State", "Actions"];
    clear(list, table("API keys", headers, r.data.map(row), "No API keys yet."));
  }

  function row(k) {
    const revoked = !!k.revoked_at;
    const expired = !revoked && k.expires_at && new Date(k.expires_at) < new Date();
    return [
      k.name,
      h("code", null, k.prefix),
      k.role,
      ...(showAll ? [h("code", null, k.user_id)] : []),
      when(k.created_at),
      k.expires_at ? when(k.expires_at) : "never",
      k.last_used_at ? when(k.last_used_at) : "never",
      revoked
        ? h("span", { class: "badge bad" }, "revoked")
        : expired
          ? h("span", { class: "badge muted" }, "expired")
          : h("span", { class: "badge ok" }, "active"),
      revoked
        ? ""
        : h("button", { type: "button", class: "danger", "aria-label": `Revoke ${k.name}`, on: { click: () => revoke(k) } }, "Revoke"),
    ];
  }

  async function revoke(k) {
    if (!(await confirm(`Revoke the key "${k.name}" (${k.prefix})? Anything using it stops working at once.`, "Revoke"))) return;
    let said;
    try {
      await ctx.api.api("DELETE", `/auth/api-keys/${encodeURIComponent(k.id)}`);
      said = ["ok", `The key "${k.name}" was revoked.`];
    } catch (err) {
      said = ["error", `Could not revoke "${k.name}": ${errorText(err)}`];
    }
    await load();
    say(...said);
    announce(said[1]);
    ctx.main.querySelector("h1")?.focus();
  }

  const toggle = admin
    ? h(
        "div",
        { class: "field check" },
        h("input", {
          type: "checkbox",
          id: "keys-all",
          checked: showAll,
          on: { change: (e) => ctx.navigate(e.target.checked ? "#/keys?all=true" : "#/keys") },
        }),
        h("label", { for: "keys-all" }, "Show every account's keys"),
      )
    : null;

  ctx.main.append(
    h("h1", null, "API keys"),
    h("p", { class: "muted" }, "A key acts as its account, with a role no higher than the account's. Send it as Authorization: Bearer <key> or X-API-Key."),
    status,
    createForm(ctx, secretSlot, load),
    secretSlot,
    h("h2", null, showAll ? "Every key" : "Your keys"),
    toggle,
    list,
  );
  ctx.onCleanup(() => clear(secretSlot));
  await load();
}

function createForm(ctx, secretSlot, created) {
  const formStatus = h("div");
  const name = h("input", { name: "name", maxlength: 100, required: true, autocomplete: "off" });
  const roles = ctx.api.isAdmin() ? ["", "user", "admin"] : ["", "user"];
  const role = h(
    "select",
    { name: "role" },
    roles.map((r) => h("option", { value: r }, r || "Same as my account")),
  );
  const expires = h("input", { name: "expires_at", type: "datetime-local" });
  const submit = h("button", { type: "submit", class: "primary" }, "Create key");
  const form = h(
    "form",
    { class: "card", id: "key-create", novalidate: true, "aria-labelledby": "key-create-title" },
    h("h2", { id: "key-create-title" }, "Create a key"),
    formStatus,
    field("Name", name, "What the key is for, e.g. nightly import."),
    field("Role", role),
    field("Expires", expires, "Optional; leave empty for the server's default lifetime."),
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const body = { name: name.value.trim() };
    if (role.value) body.role = role.value;
    if (expires.value) {
      const at = new Date(expires.value);
      if (isNaN(at)) return showFieldErrors(form, { details: [{ field: "expires_at", reason: "is not a date and time" }] });
      body.expires_at = at.toISOString();
    }
    submitForm(form, submit, formStatus, async () => {
      const r = await ctx.api.api("POST", "/auth/api-keys", { body });
      form.reset();
      clear(secretSlot, secretBox(r.data));
      await created();
      secretSlot.querySelector("h2")?.focus();
      announce(`Key ${r.data.name} created; copy its secret now`);
    });
  });
  return form;
}

/** The new key's secret, once, with a Copy button. */
function secretBox(key) {
  const code = h("code", { id: "new-key-secret" }, key.key);
  const copied = h("span", { class: "muted", role: "status" });
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(key.key);
      copied.textContent = "Copied";
      announce("Copied");
    } catch (_) {
      // No clipboard (permission or an insecure context): select the text for Ctrl+C.
      const range = document.createRange();
      range.selectNodeContents(code);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      copied.textContent = "Selected: press Ctrl+C to copy";
    }
  };
  return h(
    "section",
    { class: "card", "aria-labelledby": "new-key-title" },
    h("h2", { id: "new-key-title", tabindex: "-1" }, `New key: ${key.name}`),
    notice("warn", h("p", null, "Copy this key now. It will not be shown again.")),
    h(
      "div",
      { class: "secret" },
      code,
      h("button", { type: "button", class: "primary", on: { click: copy } }, "Copy"),
      copied,
    ),
    h("p", { class: "muted" }, `Prefix ${key.prefix}, role ${key.role}${key.expires_at ? ", expires " + key.expires_at : ""}.`),
  );
}
