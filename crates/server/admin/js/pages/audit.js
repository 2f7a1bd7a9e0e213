// The audit trail (admins): every write and auth event, newest first, filtered by the
// parameters of GET /api/v1/audit. The filters live in the hash, so a filtered view can be
// linked and survives a reload; "Verify chain" asks the server to walk the hash chain.

import { h, clear, announce, notice, errorText, field, showFieldErrors, when } from "../ui.js";
import { cursorPager, table } from "../paging.js";
import { changesCell } from "../changes.js";

const FILTERS = ["actor", "actor_kind", "action", "model", "record", "since", "until"];
const ACTIONS = [
  "record.*", "record.create", "record.update", "record.delete", "record.restore", "record.purge",
  "auth.*", "account.*", "api_key.*", "api_key.create", "api_key.revoke",
  "flag.*", "flag.create", "flag.update", "flag.delete", "alert.*", "audit.checkpoint",
];

/** A datetime-local value ("2026-11-30T08:36") as RFC 3339, or "" when empty/invalid. */
function rfc3339(local) {
  if (!local) return "";
  const d = new Date(local);
  return isNaN(d) ? local : d.toISOString();
}

export default async function render(ctx) {
  ctx.setTitle("Audit");
  const values = Object.fromEntries(FILTERS.map((f) => [f, ctx.query.get(f) || ""]));
  const status = h("div", { id: "audit-status" });
  const verifyStatus = h("div", { id: "verify-status" });
  const list = h("div", { id: "audit-list" });

  const query = {};
  for (const f of FILTERS) if (values[f]) query[f] = f === "since" || f === "until" ? rfc3339(values[f]) : values[f];

  const filters = filterForm(ctx, values);
  const pager = cursorPager(async (cursor) => {
    try {
      const r = await ctx.api.api("GET", "/audit", { query: { ...query, limit: 25, cursor } });
      if (!ctx.current()) return r.page;
      clear(status);
      clear(
        list,
        table("Audit entries", ["Seq", "At", "Actor", "Action", "Target", "Changes", "Request"], r.data.map(row), "No entries match these filters."),
      );
      return r.page;
    } catch (err) {
      if (err.status === 401) throw err;
      // A bad filter value: its reason goes next to its field, as on any form.
      showFieldErrors(filters, err);
      clear(status, notice("error", h("p", null, `Could not read the audit trail: ${errorText(err)}`)));
      clear(list);
      return null;
    }
  }, "Audit pages");

  const verify = h("button", { type: "button", on: { click: runVerify } }, "Verify chain");
  async function runVerify() {
    verify.disabled = true;
    clear(verifyStatus, h("p", { class: "loading" }, "Verifying…"));
    try {
      const r = await ctx.api.api("GET", "/audit/verify");
      const d = r.data;
      const text = d.intact
        ? `Chain intact: ${d.entries} entries checked.`
        : `Chain broken at entry ${d.seq}: ${d.reason}.`;
      clear(verifyStatus, notice(d.intact ? "ok" : "error", h("p", null, text)));
      announce(text);
    } catch (err) {
      clear(verifyStatus, notice("error", h("p", null, `Could not verify the chain: ${errorText(err)}`)));
    } finally {
      verify.disabled = false;
    }
  }

  ctx.main.append(
    h("h1", null, "Audit"),
    h("div", { class: "actions" }, verify),
    verifyStatus,
    filters,
    status,
    list,
    pager.node,
  );
  await pager.first();
}

function row(e) {
  const actor = e.actor || {};
  const target = e.target || {};
  const isRecord = target.model && !target.model.startsWith("_") && target.id;
  return [
    String(e.seq),
    when(e.at),
    h("span", null, `${actor.label || ""} `, h("span", { class: "badge muted" }, actor.kind || "?")),
    h("code", null, e.action),
    target.model
      ? isRecord
        ? h("a", { href: `#/m/${encodeURIComponent(target.model)}/${encodeURIComponent(target.id)}` }, `${target.model}/${target.id}`)
        : h("span", null, target.model + (target.id ? `/${target.id}` : ""))
      : h("span", { class: "muted" }, "—"),
    changesCell(e.changes),
    e.request_id ? h("code", null, e.request_id) : "",
  ];
}

function filterForm(ctx, values) {
  const input = (name, props = {}) => h("input", { name, value: values[name], autocomplete: "off", ...props });
  const kind = h(
    "select",
    { name: "actor_kind" },
    ["", "user", "api_key", "system", "guest"].map((k) => h("option", { value: k, selected: k === values.actor_kind }, k || "Any")),
  );
  const actions = h("datalist", { id: "audit-actions" }, ACTIONS.map((a) => h("option", { value: a })));
  const form = h(
    "form",
    { class: "card", role: "search", "aria-label": "Filter the audit trail" },
    h(
      "div",
      { class: "toolbar" },
      field("Action", input("action", { list: "audit-actions" })),
      actions,
      field("Model", input("model")),
      field("Record id", input("record")),
      field("Actor id", input("actor")),
      field("Actor kind", kind),
      field("Since", input("since", { type: "datetime-local" })),
      field("Until", input("until", { type: "datetime-local" })),
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary" }, "Filter"),
      h("button", { type: "button", on: { click: () => ctx.navigate("#/audit") } }, "Clear filters"),
    ),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const params = new URLSearchParams();
    for (const f of FILTERS) {
      const v = form.elements[f].value.trim();
      if (v) params.set(f, v);
    }
    const qs = params.toString();
    ctx.navigate("#/audit" + (qs ? "?" + qs : ""));
  });
  return form;
}
