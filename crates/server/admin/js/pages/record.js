// One record (#/m/{model}/{id}) or a new one (#/m/{model}/new): a form generated from the
// model's declaration. The server is the judge of every value: the form is sent with
// `novalidate` and the 400's `details` are shown next to their fields. An edit sends only
// the fields that changed, with `If-Match` naming the version the form was opened at, so
// somebody else's change in between is a 412 the user sees and resolves, never a silent
// overwrite.
import { h, clear, notice, errorNotice, announce, field, confirm, showFieldErrors, clearFieldErrors, short } from "../ui.js";
import { modelInfo, apiPath, pageHash } from "./model-info.js";
import { controlFor, metaList, LocalError } from "./record-fields.js";

/** A message to show on the next render of a record page (after a create or a purge). */
let pending = null;

/** The base fields a client sets, as controls like the declared ones. */
function baseControls(rec) {
  const nameInput = h("input", { name: "name", required: true, maxlength: 255, value: rec ? rec.name : "" });
  const statusSel = h(
    "select",
    { name: "status" },
    // A deleted record's form is disabled: its select must still say "deleted", not fall
    // back to the first choice; a client cannot set that status, so the option is never
    // offered on a form that can be sent.
    ["active", "inactive"]
      .concat(rec && rec.status === "deleted" ? ["deleted"] : [])
      .map((s) => h("option", { value: s, selected: rec && rec.status === s }, s)),
  );
  return [
    { node: field("name", nameInput, "required; 1 to 255 characters"), name: "name", read: () => nameInput.value },
    { node: field("status", statusSel), name: "status", read: () => statusSel.value },
  ];
}

function isSame(control, a, b) {
  if (control.same) return control.same(a, b);
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** The body of a write: every set value (create) or only the changed ones (edit). */
function bodyOf(controls, original) {
  const body = {};
  for (const c of controls) {
    const v = c.read();
    if (original) {
      if (!isSame(c, v, original[c.name])) body[c.name] = v;
    } else if (v !== null && !(Array.isArray(v) && v.length === 0) && !(c.file && v === null)) {
      body[c.name] = v;
    }
  }
  return body;
}

/** JSON, or multipart (a `data` part plus a part per chosen file) when a file is chosen. */
function payload(controls, body) {
  const parts = [];
  for (const c of controls) if (c.files) for (const f of c.files()) parts.push([c.name, f]);
  if (!parts.length) return { body };
  const form = new FormData();
  form.append("data", new Blob([JSON.stringify(body)], { type: "application/json" }));
  for (const [name, f] of parts) form.append(name, f, f.name);
  return { form };
}

/** "yours vs now" for the fields where what the user typed differs from the stored record. */
function conflictTable(controls, now) {
  const rows = [];
  for (const c of controls) {
    let mine;
    try {
      mine = c.read();
    } catch (_) {
      mine = "(invalid)";
    }
    if (c.file && c.files().length) mine = c.files().map((f) => f.name);
    if (!isSame(c, mine, now[c.name])) rows.push([c.name, mine, now[c.name]]);
  }
  const show = (v) => short(v, 200) || "—";
  if (!rows.length) return h("p", null, "Its values now match what you typed; only its version moved on.");
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { "aria-label": "Your values and the current ones" },
      h("thead", null, h("tr", null, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Yours"), h("th", { scope: "col" }, "Now"))),
      h("tbody", null, rows.map(([n, a, b]) => h("tr", null, h("th", { scope: "row" }, n), h("td", null, show(a)), h("td", null, show(b))))),
    ),
  );
}

export default async function render(ctx) {
  const model = ctx.params.model;
  const id = ctx.params.id || null;
  const info = await modelInfo(ctx.api, model);
  if (!ctx.current()) return;
  let rec = null;
  let etag = null;
  if (id) {
    const r = await ctx.api.api("GET", apiPath(model, id));
    if (!ctx.current()) return;
    rec = r.data;
    etag = r.etag;
  }
  ctx.setTitle(id ? `${model}: ${rec.name}` : `New ${model}`);
  const status = h("div", { id: "record-status", tabindex: "-1" });
  const conflictBox = h("div", { id: "record-conflict" });
  const body = h("div");
  ctx.main.append(
    h("h1", null, id ? `${model}: ${rec.name}` : `New ${model} record`),
    h("p", null, h("a", { href: pageHash(model) }, `Back to the ${model} records`)),
    status,
    conflictBox,
    body,
  );
  if (pending) {
    status.append(notice("ok", h("p", null, pending)));
    announce(pending);
    pending = null;
  }

  const say = (kind, text) => {
    clear(status, notice(kind, h("p", null, text)));
    status.focus();
    announce(text);
  };
  const failed = (err, placed = []) => {
    clear(status, errorNotice(err, placed));
    if (!placed.length) status.focus();
  };

  // What the form on screen holds that must be let go when it is redrawn or left (its
  // files' object URLs). A fetch that ends after its form was replaced lets go at once.
  let drawn = null;
  const undraw = () => {
    if (drawn) for (const fn of drawn) fn();
    drawn = null;
  };
  ctx.onCleanup(undraw);

  /** Draws the form (and for an existing record its facts and actions) from `rec`. */
  const draw = () => {
    undraw();
    const mine = [];
    drawn = mine;
    clear(body);
    const editable = id ? !!(info.can && info.can.update) && rec.status !== "deleted" : !!(info.can && info.can.create);
    const onCleanup = (fn) => (drawn === mine ? mine.push(fn) : fn());
    const fileCtx = { model, recordId: id, api: ctx.api.api, onCleanup };
    const controls = baseControls(rec).concat((info.fields || []).map((f) => controlFor(f, rec ? rec[f.name] : f.default ?? null, fileCtx)));
    const save = h("button", { type: "submit", class: "primary" }, id ? "Save" : "Create");
    const fields = h("fieldset", { disabled: !editable }, h("legend", { class: "visually-hidden" }, "Fields"), controls.map((c) => c.node));
    const form = h(
      "form",
      { class: "card", id: "record-form", novalidate: true, "aria-label": id ? `Edit ${model} record` : `New ${model} record` },
      editable ? null : h("p", { class: "muted" }, rec && rec.status === "deleted" ? "This record is deleted: restore it to edit." : "Read only: your account may not change this record."),
      fields,
      editable ? h("div", { class: "actions" }, save) : null,
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearFieldErrors(form);
      clear(status);
      let data;
      try {
        data = bodyOf(controls, rec);
      } catch (err) {
        if (!(err instanceof LocalError)) throw err;
        showFieldErrors(form, { details: [{ field: err.field, reason: err.message }] });
        return;
      }
      const send = payload(controls, data);
      if (id && !send.form && !Object.keys(data).length) return say("info", "Nothing changed.");
      save.disabled = true;
      try {
        if (!id) {
          const r = await ctx.api.api("POST", apiPath(model), send);
          pending = `Created ${r.data.name}.`;
          ctx.navigate(pageHash(model, r.data.id));
          return;
        }
        const r = await ctx.api.api("PATCH", apiPath(model, id), { ...send, headers: { "If-Match": etag } });
        rec = r.data;
        etag = r.etag;
        clear(conflictBox);
        draw();
        say("ok", `Saved: version ${rec.version}.`);
      } catch (err) {
        if (err.status === 412) return conflict(controls);
        failed(err, showFieldErrors(form, err));
      } finally {
        save.disabled = false;
      }
    });
    if (rec) body.append(metaList(rec), actions(controls));
    body.prepend(form);
  };

  /** A 412: the record moved on. Show what differs and offer the current version. */
  const conflict = async (controls) => {
    let now;
    try {
      now = await ctx.api.api("GET", apiPath(model, id));
    } catch (err) {
      return failed(err);
    }
    const reload = h(
      "button",
      {
        type: "button",
        class: "primary",
        on: {
          click: () => {
            rec = now.data;
            etag = now.etag;
            clear(conflictBox);
            draw();
            say("info", `Loaded version ${rec.version}; your changes were discarded.`);
          },
        },
      },
      "Reload",
    );
    clear(
      conflictBox,
      notice(
        "warn",
        h("p", null, h("strong", null, "This record changed since you opened it."), ` It is now at version ${now.data.version}; nothing was saved.`),
        conflictTable(controls, now.data),
        h("div", { class: "actions" }, reload),
      ),
    );
    clear(status);
    conflictBox.querySelector(".notice").setAttribute("tabindex", "-1");
    conflictBox.querySelector(".notice").focus();
    announce("This record changed since you opened it.");
  };

  /**
   * Delete, restore, purge and history, as the caller's role allows. A delete or purge
   * names the version shown (If-Match), so one that meets a newer version is the same
   * "changed since you opened it" as an edit: nobody removes what they have not seen.
   */
  const actions = (controls) => {
    const can = info.can || {};
    const run = async (fn, done) => {
      try {
        await fn();
        done();
      } catch (err) {
        if (err.status === 412) return conflict(controls);
        failed(err);
      }
    };
    const again = (text) => {
      pending = text;
      ctx.navigate(window.location.hash);
    };
    return h(
      "div",
      { class: "actions card", role: "group", "aria-label": "Record actions" },
      can.delete && rec.status !== "deleted"
        ? h("button", {
            type: "button",
            class: "danger",
            on: {
              click: async () => {
                if (!(await confirm(`Delete ${rec.name}? It can be restored by an admin.`, "Delete"))) return;
                run(() => ctx.api.api("DELETE", apiPath(model, id), { headers: { "If-Match": etag } }), () => again(`Deleted ${rec.name}.`));
              },
            },
          }, "Delete")
        : null,
      can.restore && rec.status === "deleted"
        ? h("button", {
            type: "button",
            on: { click: () => run(() => ctx.api.api("POST", apiPath(model, id) + "/restore"), () => again(`Restored ${rec.name}.`)) },
          }, "Restore")
        : null,
      can.purge
        ? h("button", {
            type: "button",
            class: "danger",
            on: {
              click: async () => {
                if (!(await confirm(`Purge ${rec.name}? It is removed for good.`, "Purge"))) return;
                run(
                  () => ctx.api.api("DELETE", apiPath(model, id), { query: { purge: "true" }, headers: { "If-Match": etag } }),
                  () => {
                    announce(`Purged ${rec.name}.`);
                    ctx.navigate(pageHash(model));
                  },
                );
              },
            },
          }, "Purge")
        : null,
      h("a", { href: `${pageHash(model, id)}/history` }, "History"),
    );
  };

  draw();
}
