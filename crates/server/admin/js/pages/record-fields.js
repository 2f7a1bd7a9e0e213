// One form control per declared field type, for the record form (record.js). Each control
// knows how to show a stored value and how to read the typed one back as the JSON the API
// takes. Constraints go on as HTML attributes too, for hints and assistive technology, but
// the form is submitted with `novalidate`: the server's 400 `details` are what the user sees.
import { h, field, when, safeHref } from "../ui.js";
import { apiPath, pageHash } from "./model-info.js";

/** A value a control could not turn into JSON (bad JSON text); shown at the field. */
export class LocalError extends Error {
  constructor(fieldName, message) {
    super(message);
    this.field = fieldName;
  }
}

const pad = (n) => String(n).padStart(2, "0");

/** An RFC 3339 instant as a datetime-local value, in the browser's zone. */
function toLocalInput(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function numberOrRaw(text, parse) {
  const t = text.trim();
  if (t === "") return null;
  const n = parse(t);
  // Not a number: send the text as typed, so the server's message names the mistake.
  return Number.isFinite(n) && String(n) !== "NaN" && /^-?[0-9.eE+]+$/.test(t) ? n : t;
}

function hintOf(f) {
  const parts = [];
  if (f.required) parts.push("required");
  if (f.min !== undefined && f.min !== null) parts.push(`at least ${f.min}`);
  if (f.max !== undefined && f.max !== null) parts.push(`at most ${f.max}`);
  if (f.min_length) parts.push(`${f.min_length}+ characters`);
  if (f.max_length && f.type !== "text") parts.push(`up to ${f.max_length} characters`);
  if (f.pattern) parts.push(`pattern ${f.pattern}`);
  if (f.type === "array") parts.push("one item per line, or a JSON list");
  if (f.type === "json") parts.push("JSON");
  if (f.type === "reference") parts.push(`id of a ${f.model} record`);
  if (f.type === "decimal") parts.push(`${f.scale ?? 2} decimal places at most`);
  if (f.type === "file") {
    if (f.mime_types) parts.push(f.mime_types.join(", "));
    if (f.max_size) parts.push(`up to ${Math.round(f.max_size / 1024)} KiB`);
  }
  return parts.join("; ");
}

/**
 * The control of declared field `f` holding `value`: {node, read(), name, file}. `read()`
 * answers the JSON value (null when empty) or throws LocalError.
 */
export function controlFor(f, value, ctx) {
  const name = f.name;
  const hint = hintOf(f) || null;
  const common = { name, required: !!f.required };
  switch (f.type) {
    case "boolean": {
      const input = h("input", { ...common, type: "checkbox", checked: value === true, required: false });
      const node = field(name, input, hint);
      node.classList.add("check");
      return { node, name, read: () => input.checked, same: (a, b) => (a ?? false) === (b ?? false) };
    }
    case "enum": {
      const sel = h(
        "select",
        common,
        h("option", { value: "" }, "(none)"),
        (f.values || []).map((v) => h("option", { value: v, selected: v === value }, v)),
      );
      return { node: field(name, sel, hint), name, read: () => sel.value || null };
    }
    case "integer":
    case "float": {
      const input = h("input", {
        ...common,
        type: "number",
        inputmode: f.type === "integer" ? "numeric" : "decimal",
        step: f.type === "integer" ? "1" : "any",
        min: f.min,
        max: f.max,
        value: value === null || value === undefined ? "" : String(value),
      });
      const parse = f.type === "integer" ? Number : parseFloat;
      return { node: field(name, input, hint), name, read: () => numberOrRaw(input.value, parse) };
    }
    case "decimal": {
      const input = h("input", { ...common, inputmode: "decimal", value: value ?? "" });
      return { node: field(name, input, hint), name, read: () => input.value.trim() || null };
    }
    case "date": {
      const input = h("input", { ...common, type: "date", min: f.min, max: f.max, value: value ?? "" });
      return { node: field(name, input, hint), name, read: () => input.value || null };
    }
    case "datetime": {
      const input = h("input", { ...common, type: "datetime-local", step: "1", value: value ? toLocalInput(value) : "" });
      const read = () => {
        if (!input.value) return null;
        const d = new Date(input.value);
        return isNaN(d) ? input.value : d.toISOString();
      };
      return { node: field(name, input, hint), name, read, same: (a, b) => (a ? Date.parse(a) : null) === (b ? Date.parse(b) : null) };
    }
    case "json": {
      const area = h("textarea", { ...common, rows: 4, class: "mono" });
      area.value = value === null || value === undefined ? "" : JSON.stringify(value, null, 2);
      const read = () => {
        if (!area.value.trim()) return null;
        try {
          return JSON.parse(area.value);
        } catch (e) {
          throw new LocalError(name, "is not valid JSON");
        }
      };
      return { node: field(name, area, hint), name, read };
    }
    case "array": {
      const area = h("textarea", { ...common, rows: 3 });
      area.value = Array.isArray(value) ? value.join("\n") : "";
      const read = () => {
        const t = area.value.trim();
        if (!t) return null;
        if (t.startsWith("[")) {
          try {
            return JSON.parse(t);
          } catch (e) {
            throw new LocalError(name, "is not a valid JSON list");
          }
        }
        const items = t.split("\n").map((s) => s.trim()).filter(Boolean);
        return f.items === "integer" ? items.map((s) => numberOrRaw(s, Number)) : items;
      };
      return { node: field(name, area, hint), name, read };
    }
    case "reference": {
      const input = h("input", { ...common, value: value ?? "", spellcheck: "false", autocomplete: "off" });
      const node = field(name, input, hint);
      if (value && f.model) {
        node.append(h("a", { href: pageHash(f.model, value) }, `Open the ${f.model} record`));
      }
      return { node, name, read: () => input.value.trim() || null };
    }
    case "file":
      return fileControl(f, value, hint, ctx);
    case "text": {
      const area = h("textarea", { ...common, rows: 4, minlength: f.min_length, maxlength: f.max_length });
      area.value = value ?? "";
      return { node: field(name, area, hint), name, read: () => (area.value === "" ? null : area.value) };
    }
    default: {
      const type = f.type === "email" ? "email" : f.type === "url" ? "url" : "text";
      const input = h("input", { ...common, type, value: value ?? "", minlength: f.min_length, maxlength: f.max_length, pattern: f.pattern });
      const node = field(name, input, hint);
      const href = f.type === "url" ? safeHref(value) : null;
      if (href) node.append(h("a", { href, target: "_blank", rel: "noopener noreferrer" }, `Open ${name} in a new tab`));
      return { node, name, read: () => (input.value === "" ? null : input.value) };
    }
  }
}

/**
 * The types shown as a preview, and the only ones whose object URL keeps its type: any
 * other file (HTML, SVG, …) gets an application/octet-stream copy, because a blob: URL
 * belongs to the console's origin and a document opened from it (a middle click on the
 * download link) could otherwise run in it.
 */
const PREVIEWABLE = /^image\/(png|jpeg|gif|webp|avif)$/;

/**
 * A file field: the files the record holds (a download link each and, for images, a
 * preview, both from one authorised fetch turned into an object URL, revoked through
 * `ctx.onCleanup`), a "remove" box each, and a file input for new ones. The link gets its
 * address only once the bytes are in: the API's own URL would be fetched without the
 * access token. `read()` answers the kept names; `files()` the chosen File objects, sent
 * as multipart parts named by the field.
 */
function fileControl(f, value, hint, ctx) {
  const name = f.name;
  const held = Array.isArray(value) ? value : value ? [value] : [];
  const input = h("input", { name, type: "file", accept: (f.mime_types || []).join(",") || null, multiple: !!f.multiple });
  const node = field(name, input, hint);
  const removes = [];
  if (held.length && ctx.recordId) {
    const list = h("ul", { class: "files" });
    for (const fileName of held) {
      const path = `${apiPath(ctx.model, ctx.recordId)}/files/${encodeURIComponent(name)}/${encodeURIComponent(fileName)}`;
      const link = h("a", { download: fileName }, `Download ${fileName}`);
      const remove = h("input", { type: "checkbox", name: `${name}__remove`, value: fileName });
      removes.push(remove);
      const item = h("li", null, link, " ", h("label", { class: "inline" }, remove, ` Remove ${fileName}`));
      list.append(item);
      ctx
        .api("GET", path, { raw: true })
        .then((res) => res.blob())
        .then((blob) => {
          const image = PREVIEWABLE.test(blob.type);
          const objectUrl = URL.createObjectURL(image ? blob : new Blob([blob], { type: "application/octet-stream" }));
          ctx.onCleanup(() => URL.revokeObjectURL(objectUrl));
          link.href = objectUrl;
          if (image) {
            item.append(h("div", { class: "preview" }, h("img", { src: objectUrl, alt: `Preview of ${fileName}` })));
          }
        })
        .catch(() => {
          item.append(h("span", { class: "muted" }, " (could not be loaded)"));
        });
    }
    input.before(h("p", { class: "muted" }, held.length === 1 ? "Current file:" : "Current files:"), list);
  } else if (held.length) {
    node.append(h("p", { class: "muted" }, held.join(", ")));
  }
  const read = () => {
    const kept = held.filter((n) => !removes.some((r) => r.checked && r.value === n));
    if (f.multiple) return kept;
    return kept.length ? kept[0] : null;
  };
  const same = (a, b) => JSON.stringify(a ?? (f.multiple ? [] : null)) === JSON.stringify(b ?? (f.multiple ? [] : null));
  return { node, name, read, same, files: () => Array.from(input.files || []), file: true };
}

/** A read-only line of the record's server-set fields. */
export function metaList(rec) {
  const row = (k, v) => [h("dt", null, k), h("dd", null, v)];
  return h(
    "dl",
    { class: "meta" },
    row("id", h("code", null, rec.id)),
    row("status", rec.status),
    row("version", String(rec.version)),
    row("owner_id", rec.owner_id ? h("code", null, rec.owner_id) : "—"),
    row("created", when(rec.created_at)),
    row("updated", when(rec.updated_at)),
  );
}
