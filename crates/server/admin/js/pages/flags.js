// Feature flags (admins): the table of flags, create, switch on/off, set the rollout
// percentage, delete. Every change sends If-Match with the ETag the page read, so a flag
// changed meanwhile (by another admin or instance) is reported, not overwritten.

import { h, clear, announce, notice, errorText, field, showFieldErrors, clearFieldErrors, confirm, when, submitForm } from "../ui.js";
import { table } from "../paging.js";

export default async function render(ctx) {
  ctx.setTitle("Flags");
  const status = h("div", { id: "flags-status" });
  const list = h("div", { id: "flags-list" });
  const say = (kind, text) => {
    clear(status, notice(kind, h("p", null, text)));
    announce(text);
  };

  async function load() {
    const r = await ctx.api.api("GET", "/flags");
    // The list carries no ETag; each flag's tag (id and version) comes from its own GET.
    const tagged = await Promise.all(
      r.data.map(async (f) => {
        try {
          const one = await ctx.api.api("GET", `/flags/${encodeURIComponent(f.key)}`);
          return { flag: one.data, etag: one.etag };
        } catch (_) {
          return { flag: f, etag: null };
        }
      }),
    );
    if (!ctx.current()) return;
    clear(
      list,
      table(
        "Feature flags",
        ["Key", "Description", "Enabled", "Rollout", "Allow / deny", "Schedule", "Updated", "Actions"],
        tagged.map(({ flag, etag }) => row(flag, etag)),
        "No flags yet.",
      ),
    );
  }

  /**
   * PATCHes `flag` with If-Match. Field errors are answered (the row stays as typed, for
   * showFieldErrors); anything else redraws the table first and then says what happened,
   * so the message never describes a table about to be replaced.
   */
  async function patch(flag, etag, body, what) {
    if (!etag) return unread(flag);
    let said;
    try {
      await ctx.api.api("PATCH", `/flags/${encodeURIComponent(flag.key)}`, {
        body,
        headers: { "If-Match": etag },
      });
      said = ["ok", `${flag.key}: ${what}.`];
    } catch (err) {
      if (err.status === 400 && err.details.length) return err;
      said =
        err.status === 412
          ? ["error", `${flag.key} was changed since you opened it; the table now shows its new values. Try again.`]
          : ["error", `Could not change ${flag.key}: ${errorText(err)}`];
    }
    await load();
    say(...said);
    return null;
  }

  /**
   * A flag whose own GET failed has no tag to send: a change without If-Match could
   * overwrite someone else's, so none is sent; the table is read again instead.
   */
  async function unread(flag) {
    await load();
    say("error", `${flag.key} could not be read just now, so nothing was changed; the table is reloaded, try again.`);
    return null;
  }

  function row(flag, etag) {
    const enabled = h("input", {
      type: "checkbox",
      checked: flag.enabled,
      "aria-label": `Enabled ${flag.key}`,
      on: {
        change: async (e) => {
          const on = e.target.checked;
          const err = await patch(flag, etag, { enabled: on }, on ? "enabled" : "disabled");
          if (err) {
            await load();
            say("error", `Could not change ${flag.key}: ${errorText(err)}`);
          }
          list.querySelector(`input[aria-label="Enabled ${CSS.escape(flag.key)}"]`)?.focus();
        },
      },
    });
    const rollout = h("input", {
      name: "rollout",
      type: "number",
      min: 0,
      max: 100,
      step: "0.01",
      inputmode: "decimal",
      value: String(flag.rollout),
      "aria-label": `Rollout % of ${flag.key}`,
    });
    const slot = h("p", { class: "field-error", "data-error-for": "rollout", hidden: true, id: `rollout-err-${flag.key}` });
    rollout.setAttribute("aria-describedby", slot.id);
    const form = h(
      "form",
      { novalidate: true, class: "actions" },
      rollout,
      h("span", { "aria-hidden": "true" }, "%"),
      h("button", { type: "submit", "aria-label": `Save rollout of ${flag.key}` }, "Save"),
      slot,
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearFieldErrors(form);
      const value = rollout.value.trim() === "" ? NaN : Number(rollout.value);
      if (!Number.isFinite(value)) {
        showFieldErrors(form, { details: [{ field: "rollout", reason: "must be a number from 0 to 100" }] });
        return;
      }
      const err = await patch(flag, etag, { rollout: value }, `rollout ${value} %`);
      if (err) showFieldErrors(form, err);
      else list.querySelector(`input[aria-label="Rollout % of ${CSS.escape(flag.key)}"]`)?.focus();
    });
    const schedule = flag.on_from || flag.off_after
      ? h(
          "span",
          null,
          flag.on_from ? ["on at ", when(flag.on_from)] : null,
          flag.on_from && flag.off_after ? "; " : null,
          flag.off_after ? ["off after ", when(flag.off_after)] : null,
        )
      : h("span", { class: "muted" }, "always");
    return [
      h("code", null, flag.key),
      flag.description || h("span", { class: "muted" }, "—"),
      h("div", { class: "field check" }, enabled, h("span", { class: flag.enabled ? "badge ok" : "badge muted" }, flag.enabled ? "on" : "off")),
      form,
      `${flag.allow.length} allowed / ${flag.deny.length} denied`,
      schedule,
      when(flag.updated_at),
      h("button", { type: "button", class: "danger", "aria-label": `Delete ${flag.key}`, on: { click: () => remove(flag, etag) } }, "Delete"),
    ];
  }

  async function remove(flag, etag) {
    if (!(await confirm(`Delete the flag ${flag.key}? Code that asks for it will see it off.`, "Delete"))) return;
    if (!etag) {
      await unread(flag);
      ctx.main.querySelector("h1")?.focus();
      return;
    }
    let said;
    try {
      await ctx.api.api("DELETE", `/flags/${encodeURIComponent(flag.key)}`, { headers: { "If-Match": etag } });
      said = ["ok", `${flag.key} was deleted.`];
    } catch (err) {
      said =
        err.status === 412
          ? ["error", `${flag.key} was changed since you opened it; look at its new values first.`]
          : ["error", `Could not delete ${flag.key}: ${errorText(err)}`];
    }
    await load();
    say(...said);
    ctx.main.querySelector("h1")?.focus();
  }

  ctx.main.append(h("h1", null, "Flags"), status, createForm(ctx, say, load), h("h2", null, "Flags"), list);
  await load();
}

function createForm(ctx, say, created) {
  const formStatus = h("div");
  const key = h("input", { name: "key", required: true, autocomplete: "off", maxlength: 64 });
  const description = h("input", { name: "description", autocomplete: "off" });
  const enabled = h("input", { name: "enabled", type: "checkbox", id: "flag-new-enabled" });
  const rollout = h("input", { name: "rollout", type: "number", min: 0, max: 100, step: "0.01", value: "0", inputmode: "decimal" });
  rollout.defaultValue = "0";
  const submit = h("button", { type: "submit", class: "primary" }, "Create flag");
  const form = h(
    "form",
    { class: "card", id: "flag-create", novalidate: true, "aria-labelledby": "flag-create-title" },
    h("h2", { id: "flag-create-title" }, "Create a flag"),
    formStatus,
    field("Key", key, "Lowercase words joined by - _ or ., starting with a letter (new-checkout)."),
    field("Description", description),
    h(
      "div",
      { class: "field check" },
      enabled,
      h("label", { for: "flag-new-enabled" }, "Enabled"),
      h("p", { class: "field-error", "data-error-for": "enabled", hidden: true }),
    ),
    field("Rollout %", rollout, "0 to 100, at most two decimals."),
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const body = { key: key.value.trim(), description: description.value, enabled: enabled.checked };
    const r = rollout.value.trim();
    body.rollout = r === "" ? 0 : Number(r);
    if (!Number.isFinite(body.rollout)) return showFieldErrors(form, { details: [{ field: "rollout", reason: "must be a number from 0 to 100" }] });
    submitForm(form, submit, formStatus, async () => {
      await ctx.api.api("POST", "/flags", { body });
      form.reset();
      await created();
      say("ok", `Flag ${body.key} created.`);
      key.focus();
    }, "key");
  });
  return form;
}
