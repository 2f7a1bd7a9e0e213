// Renders /api/v1/openapi.json: operations by tag (parameters, bodies, responses), then
// every schema. Everything shown is text set through textContent; nothing is loaded from
// anywhere but this server.
"use strict";

const METHODS = ["get", "post", "put", "patch", "delete"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return node;
}

function refName(ref) {
  return ref.replace("#/components/schemas/", "");
}

function schemaLink(ref) {
  const name = refName(ref);
  return el("a", { href: "#schema-" + name }, name);
}

// A one-line summary of a schema: its type and constraints.
function describe(s) {
  if (!s) return el("span", { class: "muted" }, "any");
  if (s.$ref) return schemaLink(s.$ref);
  const out = el("span");
  if (s.type === "array" || (Array.isArray(s.type) && s.type.includes("array"))) {
    out.append("list of ", describe(s.items));
  } else if (s.properties && s.properties.data) {
    out.append("envelope: data = ", describe(s.properties.data));
    if (s.properties.page) out.append(", page");
  } else {
    const type = Array.isArray(s.type) ? s.type.join(" | ") : (s.type || "any");
    out.append(type);
  }
  const notes = [];
  if (s.format) notes.push("format " + s.format);
  if (s.enum) notes.push("one of " + s.enum.map((v) => JSON.stringify(v)).join(", "));
  if (s.const !== undefined) notes.push("= " + JSON.stringify(s.const));
  if (s.minLength !== undefined) notes.push("min length " + s.minLength);
  if (s.maxLength !== undefined) notes.push("max length " + s.maxLength);
  if (s.minimum !== undefined) notes.push("min " + s.minimum);
  if (s.maximum !== undefined) notes.push("max " + s.maximum);
  if (s.maxItems !== undefined) notes.push("at most " + s.maxItems + " values");
  if (s.pattern) notes.push("pattern " + s.pattern);
  if (notes.length) out.append(el("span", { class: "muted" }, " (" + notes.join("; ") + ")"));
  return out;
}

function flags(s) {
  const span = el("span");
  const add = (on, text) => on && span.append(el("span", { class: "flag" }, text));
  add(s["x-plinth-pii"], "pii");
  add(s["x-plinth-unique"] === true, "unique");
  add(s["x-plinth-unique"] === "owner", "unique per owner");
  add(s["x-plinth-indexed"], "indexed");
  add(s["x-plinth-admin-only"], "admin only");
  return span;
}

function parameters(op) {
  const ps = op.parameters || [];
  if (!ps.length) return null;
  const table = el("table", {}, el("tr", {}, el("th", {}, "Parameter"), el("th", {}, "In"),
    el("th", {}, "Value"), el("th", {}, "Description")));
  for (const p of ps) {
    table.append(el("tr", {}, el("td", {}, el("code", {}, p.name), p.required ? " *" : ""),
      el("td", {}, p.in), el("td", {}, describe(p.schema)), el("td", {}, p.description || "")));
  }
  return table;
}

function responses(op) {
  const table = el("table", {}, el("tr", {}, el("th", {}, "Status"), el("th", {}, "Body"),
    el("th", {}, "Description")));
  for (const [status, r] of Object.entries(op.responses || {})) {
    const content = r.content ? Object.values(r.content)[0] : null;
    table.append(el("tr", {}, el("td", {}, status),
      el("td", {}, content ? describe(content.schema) : el("span", { class: "muted" }, "none")),
      el("td", {}, r.description || "")));
  }
  return table;
}

function security(doc, op) {
  const sec = op.security || doc.security || [];
  const names = sec.map((s) => Object.keys(s)[0] || "none (guest)");
  return el("p", { class: "muted" }, "Credentials: " + (names.join(", ") || "none"));
}

function operation(doc, path, method, op) {
  const body = op.requestBody && Object.values(op.requestBody.content || {})[0];
  return el("details", { class: "op", id: "op-" + (op.operationId || method + path) },
    el("summary", {}, el("span", { class: "method " + method }, method), " ",
      el("span", { class: "path" }, path), " ", el("span", { class: "muted" }, op.summary || "")),
    el("div", {},
      op.description ? el("p", {}, op.description) : null,
      security(doc, op),
      parameters(op),
      body ? el("p", {}, "Body: ", describe(body.schema)) : null,
      responses(op)));
}

function schemaSection(name, s) {
  const section = el("section", { id: "schema-" + name }, el("h3", {}, name));
  if (s.description) section.append(el("p", {}, s.description));
  if (!s.properties) {
    section.append(el("p", {}, describe(s)));
    return section;
  }
  const required = new Set(s.required || []);
  const table = el("table", {}, el("tr", {}, el("th", {}, "Field"), el("th", {}, "Value"),
    el("th", {}, "Notes")));
  for (const [field, f] of Object.entries(s.properties)) {
    table.append(el("tr", {}, el("td", {}, el("code", {}, field), required.has(field) ? " *" : ""),
      el("td", {}, describe(f)), el("td", {}, flags(f), f.description || "")));
  }
  section.append(table);
  return section;
}

function render(doc) {
  document.getElementById("title").textContent = doc.info.title + " " + doc.info.version;
  const summary = document.getElementById("summary");
  summary.textContent = doc.info.description || "";
  summary.append(" ", el("a", { href: "/api/v1/openapi.json" }, "The document (OpenAPI " + doc.openapi + ")"),
    ". Fields marked * are required.");
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operation(doc, path, method, op));
    }
  }
  const main = document.getElementById("main");
  const toc = el("ul");
  for (const [tag, ops] of byTag) {
    toc.append(el("li", {}, el("a", { href: "#tag-" + tag }, tag)));
    main.append(el("h2", { id: "tag-" + tag }, tag), ...ops);
  }
  toc.append(el("li", {}, el("a", { href: "#schemas" }, "schemas")));
  document.getElementById("toc").append(toc);
  main.append(el("h2", { id: "schemas" }, "Schemas"));
  const schemas = (doc.components && doc.components.schemas) || {};
  for (const [name, s] of Object.entries(schemas)) main.append(schemaSection(name, s));
}

fetch("/api/v1/openapi.json")
  .then((r) => (r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status))))
  .then(render)
  .catch((e) => {
    const summary = document.getElementById("summary");
    summary.className = "error";
    summary.textContent = "Could not load the document: " + e.message;
  });
