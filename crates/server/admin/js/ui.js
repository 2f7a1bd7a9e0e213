// DOM helpers shared by the pages. Text goes in through text nodes only (never innerHTML),
// so nothing a record holds can run as markup.

/**
 * An element. `props`: `class`, `on` ({event: handler}), `dataset`, boolean attributes
 * (true sets, false/null/undefined leaves out), `value`/`checked` (set as properties),
 * any other attribute as a string. Children: nodes, strings, numbers, arrays, null.
 */
export function h(tag, props, ...children) {
  const svg = tag.startsWith("svg:");
  const node = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "on") {
      for (const [event, fn] of Object.entries(v)) node.addEventListener(event, fn);
    } else if (k === "class") {
      node.setAttribute("class", Array.isArray(v) ? v.filter(Boolean).join(" ") : v);
    } else if (k === "dataset") {
      Object.assign(node.dataset, v);
    } else if (k === "value" || k === "checked") {
      node[k] = v;
    } else if (v === true) {
      node.setAttribute(k, "");
    } else {
      node.setAttribute(k, String(v));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else if (c instanceof Node) node.append(c);
    else node.append(document.createTextNode(String(c)));
  }
}

/** Removes every child of `node`; appends `children` if given. */
export function clear(node, ...children) {
  while (node.firstChild) node.firstChild.remove();
  append(node, children);
  return node;
}

/** Says `message` to screen readers (the page's polite live region). */
export function announce(message) {
  const live = document.getElementById("live");
  if (!live) return;
  live.textContent = "";
  setTimeout(() => {
    live.textContent = message;
  }, 30);
}

/** A visible message box: kind "error" (role=alert), "ok" or "info" (role=status). */
export function notice(kind, ...children) {
  return h("div", { class: ["notice", kind], role: kind === "error" ? "alert" : "status" }, children);
}

/** A sentence for an error: the envelope's message, and its request id when there is one. */
export function errorText(err) {
  if (!err) return "something went wrong";
  const msg = err.message || String(err);
  return err.requestId ? `${msg} (request ${err.requestId})` : msg;
}

/** An error notice for `err`, listing details that name no field of the form. */
export function errorNotice(err, knownFields = []) {
  const loose = (err.details || []).filter((d) => !knownFields.includes(d.field));
  return notice(
    "error",
    h("p", null, errorText(err)),
    loose.length ? h("ul", null, loose.map((d) => h("li", null, `${d.field}: ${d.message || d.reason || ""}`))) : null,
  );
}

/**
 * Shows each `details` entry of `err` next to the form control named by its field: an
 * element `#err-<form id>-<field>` gets the message, the control `aria-invalid`. Answers
 * the names of the fields it placed.
 */
export function showFieldErrors(form, err) {
  clearFieldErrors(form);
  const placed = [];
  for (const d of err.details || []) {
    const field = String(d.field || "").split(/[.[]/)[0];
    const slot = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
    const control = form.querySelector(`[name="${CSS.escape(field)}"]`);
    if (!slot) continue;
    slot.textContent = d.message || d.reason || "invalid";
    slot.hidden = false;
    if (control) control.setAttribute("aria-invalid", "true");
    placed.push(d.field);
  }
  const first = form.querySelector('[aria-invalid="true"]');
  if (first) first.focus();
  return placed;
}

/**
 * Runs `action` for a form's submit: clears the last errors, disables `submit` meanwhile,
 * and on an error answer shows each field's message beside it and the rest in `status`
 * (focus goes to the first wrong field, else back to `submit`). `conflictField` names the
 * field a 409 without details is about (a taken key or email).
 */
export async function submitForm(form, submit, status, action, conflictField) {
  clear(status);
  clearFieldErrors(form);
  submit.disabled = true;
  try {
    await action();
  } catch (err) {
    const details = err.details || [];
    if (conflictField && err.status === 409 && !details.length) {
      err.details = [{ field: conflictField, reason: err.message }];
    }
    const placed = showFieldErrors(form, err);
    if (placed.length < (err.details || []).length || !(err.details || []).length) {
      clear(status, errorNotice(err, placed));
    }
    if (!placed.length) submit.focus();
  } finally {
    submit.disabled = false;
  }
}

export function clearFieldErrors(form) {
  for (const slot of form.querySelectorAll("[data-error-for]")) {
    slot.textContent = "";
    slot.hidden = true;
  }
  for (const c of form.querySelectorAll('[aria-invalid="true"]')) c.removeAttribute("aria-invalid");
}

/**
 * A labelled form control with a slot for its error: `control` is an input, select or
 * textarea with a `name`; the label is tied to it by id.
 */
export function field(label, control, hint) {
  const id = control.id || `f-${control.getAttribute("name")}-${Math.random().toString(36).slice(2, 8)}`;
  control.id = id;
  const errId = `${id}-err`;
  const hintId = hint ? `${id}-hint` : null;
  control.setAttribute("aria-describedby", [hintId, errId].filter(Boolean).join(" "));
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    h("p", { class: "field-error", id: errId, "data-error-for": control.getAttribute("name"), hidden: true }),
  );
}

/**
 * Asks a yes/no question in a modal <dialog>; resolves true when confirmed. Focus starts
 * on Cancel, the harmless answer (the questions are about deleting), and a "no" (Cancel
 * or Escape) gives it back to what had it before, so the keyboard user is where they were.
 */
export function confirm(question, yes = "Confirm") {
  const before = document.activeElement;
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-label": question },
      h("p", null, question),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "danger", on: { click: () => done(true) } }, yes),
        h("button", { type: "button", autofocus: true, on: { click: () => done(false) } }, "Cancel"),
      ),
    );
    const done = (answer) => {
      dialog.close();
      dialog.remove();
      if (!answer && before && before.isConnected) before.focus();
      resolve(answer);
    };
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault();
      done(false);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/**
 * `value` as a link address when it is an absolute http(s) URL, else null: whatever a
 * record holds never becomes a `javascript:` or `data:` link (the server checks `url`
 * fields the same way; this is the console's own guard).
 */
export function safeHref(value) {
  if (typeof value !== "string") return null;
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch (_) {
    return null;
  }
}

/** A time for people, in the browser's locale; the raw value in a title. */
export function when(value) {
  if (!value) return h("span", null, "—");
  const d = new Date(value);
  return h("time", { datetime: value, title: value }, isNaN(d) ? value : d.toLocaleString());
}

/** A value of a record as short text for a table cell. */
export function short(value, max = 80) {
  if (value === null || value === undefined) return "";
  const s = typeof value === "object" ? JSON.stringify(value) : String(value);
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}
