// Accounts (admins): list with cursor paging, create, change a role (If-Match on the
// version the list showed, so a change made meanwhile is not overwritten), end an
// account's sessions, delete.

import { h, clear, announce, notice, errorText, field, confirm, when, submitForm } from "../ui.js";
import { cursorPager, table } from "../paging.js";

const ROLES = ["user", "admin"];

export default async function render(ctx) {
  ctx.setTitle("Users");
  const status = h("div", { id: "users-status" });
  const list = h("div", { id: "users-list" });
  const pager = cursorPager(async (cursor) => {
    const r = await ctx.api.api("GET", "/users", { query: { limit: 20, cursor } });
    if (!ctx.current()) return r.page;
    clear(list, table("Accounts", ["Email", "Role", "Email verified", "Created", "Actions"], r.data.map((u) => row(u)), "No accounts."));
    return r.page;
  }, "Account pages");

  const say = (kind, text) => clear(status, notice(kind, h("p", null, text)));

  function row(u) {
    const select = h(
      "select",
      { name: "role", "aria-label": `Role of ${u.email}` },
      ROLES.map((r) => h("option", { value: r, selected: r === u.role }, r)),
    );
    const save = h("button", { type: "button", "aria-label": `Change role of ${u.email}`, on: { click: () => changeRole(u, select.value) } }, "Change role");
    return h(
      "tr",
      null,
      h("td", null, u.email),
      h("td", null, h("div", { class: "actions" }, select, save)),
      h("td", null, u.email_verified ? h("span", { class: "badge ok" }, "verified") : h("span", { class: "badge muted" }, "not verified")),
      h("td", null, when(u.created_at)),
      h(
        "td",
        null,
        h(
          "div",
          { class: "actions" },
          h("button", { type: "button", "aria-label": `End sessions of ${u.email}`, on: { click: () => endSessions(u) } }, "End sessions"),
          h("button", { type: "button", class: "danger", "aria-label": `Delete ${u.email}`, on: { click: () => remove(u) } }, "Delete"),
        ),
      ),
    );
  }

  async function changeRole(u, role) {
    if (role === u.role) return say("info", `${u.email} already has the role ${role}.`);
    let said;
    try {
      await ctx.api.api("PATCH", `/users/${encodeURIComponent(u.id)}`, {
        body: { role },
        headers: { "If-Match": `"${u.version}"` },
      });
      said = ["ok", `${u.email} now has the role ${role}.`];
    } catch (err) {
      said =
        err.status === 412
          ? ["error", `${u.email} was changed since you opened this page; the list is reloaded, try again.`]
          : ["error", `Could not change the role of ${u.email}: ${errorText(err)}`];
    }
    await pager.reload();
    say(...said);
    announce(said[1]);
    ctx.main.querySelector(`select[aria-label="Role of ${CSS.escape(u.email)}"]`)?.focus();
  }

  async function endSessions(u) {
    if (!(await confirm(`End every session of ${u.email}? They will have to sign in again.`, "End sessions"))) return;
    try {
      await ctx.api.api("DELETE", `/users/${encodeURIComponent(u.id)}/sessions`);
      say("ok", `Every session of ${u.email} was ended.`);
    } catch (err) {
      say("error", `Could not end the sessions of ${u.email}: ${errorText(err)}`);
    }
  }

  async function remove(u) {
    if (!(await confirm(`Delete the account ${u.email}? Its sessions and API keys end; its records stay.`, "Delete"))) return;
    let said;
    try {
      await ctx.api.api("DELETE", `/users/${encodeURIComponent(u.id)}`);
      said = ["ok", `${u.email} was deleted.`];
    } catch (err) {
      said = ["error", `Could not delete ${u.email}: ${errorText(err)}`];
    }
    await pager.reload();
    say(...said);
    announce(said[1]);
    ctx.main.querySelector("h1")?.focus();
  }

  ctx.main.append(h("h1", null, "Users"), status, createForm(ctx, say, () => pager.first()), h("h2", null, "Accounts"), list, pager.node);
  await pager.first();
}

/** The "Create an account" form; server errors go next to their fields. */
function createForm(ctx, say, created) {
  const formStatus = h("div");
  const email = h("input", { name: "email", type: "email", autocomplete: "off", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password", required: true });
  const role = h("select", { name: "role" }, ROLES.map((r) => h("option", { value: r }, r)));
  const submit = h("button", { type: "submit", class: "primary" }, "Create account");
  const form = h(
    "form",
    { class: "card", id: "user-create", novalidate: true, "aria-labelledby": "user-create-title" },
    h("h2", { id: "user-create-title" }, "Create an account"),
    formStatus,
    field("Email", email),
    field("Password", password, "At least 12 characters; a passphrase of unrelated words is best."),
    field("Role", role),
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    submitForm(form, submit, formStatus, async () => {
      await ctx.api.api("POST", "/users", { body: { email: email.value.trim(), password: password.value, role: role.value } });
      const made = email.value.trim();
      form.reset();
      await created();
      say("ok", `Account ${made} created.`);
      announce("Account created");
      email.focus();
    }, "email");
  });
  return form;
}
