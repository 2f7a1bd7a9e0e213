// The record table of one model (#/m/{model}). The hash's query IS the list query sent to
// /api/v1/{model} (filters `field[op]=value`, `q`, `sort`, `status`, `limit`, `cursor`),
// so a reload, a bookmark and Back all show the same page. The table follows the model's
// change feed while it is open: new, changed and removed records show without a reload.
import { h, clear, notice, errorNotice, announce, field, when, short } from "../ui.js";
import { modelInfo, apiPath, pageHash } from "./model-info.js";
import { follow } from "./feed.js";

/** Query keys that shape the list rather than filter it. */
const RESERVED = new Set(["q", "sort", "limit", "cursor", "count", "filter", "fields", "expand"]);
const BASE_FILTERABLE = ["name", "id", "created_at", "updated_at", "owner_id", "version"];
const BASE_SORTABLE = ["created_at", "updated_at", "name"];
const OPERATORS = [
  ["eq", "equals"],
  ["ne", "not equal"],
  ["gt", "greater than"],
  ["gte", "at least"],
  ["lt", "less than"],
  ["lte", "at most"],
  ["like", "like (* wildcard)"],
  ["in", "one of (comma-separated)"],
  ["has", "has (arrays)"],
  ["has_any", "has any (arrays)"],
];
const PAGE_SIZES = [10, 20, 50, 100, 200];
/** The status choices: the label, and the list parameters each stands for. */
const STATUSES = [
  ["", "Not deleted (default)", {}],
  ["active", "Active", { status: "active" }],
  ["inactive", "Inactive", { status: "inactive" }],
  ["deleted", "Deleted", { status: "deleted" }],
  ["all", "All, deleted included", { "status[in]": "active,inactive,deleted" }],
];
/** The screens wide enough to show the sort and filter controls unfolded (admin.css's breakpoint). */
const WIDE = "(min-width: 721px)";
/** How long a changed row stays highlighted. */
const FLASH_MS = 4000;

/** The hash query split into {filters: [[field, op, value]], rest: {q, sort, …}, statusChoice}. */
function readQuery(query) {
  const filters = [];
  const rest = {};
  let statusChoice = "";
  for (const [key, value] of query) {
    if (RESERVED.has(key)) {
      rest[key] = value;
      continue;
    }
    const m = /^([^[\]]+)(?:\[([a-z_]+)\])?$/.exec(key);
    const name = m ? m[1] : key;
    const op = m && m[2] ? m[2] : "eq";
    if (name === "status") {
      const hit = STATUSES.find(([, , p]) => Object.entries(p).some(([k, v]) => k === key && v === value));
      statusChoice = hit ? hit[0] : "";
      continue;
    }
    filters.push([name, op, value]);
  }
  return { filters, rest, statusChoice };
}

/** The list parameters of a {filters, rest, statusChoice}, as an ordered list of pairs. */
function toPairs({ filters, rest, statusChoice }) {
  const pairs = [];
  for (const [name, op, value] of filters) pairs.push([op === "eq" ? name : `${name}[${op}]`, value]);
  const status = STATUSES.find(([v]) => v === statusChoice);
  if (status) pairs.push(...Object.entries(status[2]));
  for (const key of ["q", "filter", "sort", "limit", "cursor"]) {
    if (rest[key]) pairs.push([key, rest[key]]);
  }
  return pairs;
}

/** The pairs as an api() query object (a key given twice becomes a list). */
function queryObject(pairs) {
  const out = {};
  for (const [k, v] of pairs) {
    if (k in out) out[k] = [].concat(out[k], v);
    else out[k] = v;
  }
  return out;
}

function hashOf(model, pairs) {
  const qs = new URLSearchParams(pairs).toString();
  return pageHash(model) + (qs ? "?" + qs : "");
}

/** The declared fields worth a column: scalars, not file lists or JSON blobs. */
function columnsOf(info) {
  return (info.fields || []).filter((f) => !["file", "json", "array"].includes(f.type)).slice(0, 4);
}

function statusBadge(status) {
  const kind = status === "active" ? "ok" : status === "deleted" ? "bad" : "muted";
  return h("span", { class: ["badge", kind] }, status);
}

function rowOf(model, cols, rec) {
  return h(
    "tr",
    { dataset: { id: rec.id } },
    h("th", { scope: "row" }, h("a", { href: pageHash(model, rec.id) }, rec.name || rec.id)),
    h("td", null, statusBadge(rec.status)),
    cols.map((f) => h("td", { class: ["integer", "decimal", "float", "number"].includes(f.type) ? "num" : null }, short(rec[f.name], 60))),
    h("td", null, when(rec.updated_at)),
  );
}

function select(name, options, value) {
  return h(
    "select",
    { name },
    options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)),
  );
}

/** One filter of the builder: field, operator, value, and a remove button. */
function filterRow(fields, [name, op, value], n, onRemove) {
  const row = h(
    "fieldset",
    { class: "toolbar filter-row" },
    h("legend", { class: "visually-hidden" }, `Filter ${n}`),
    field(`Filter ${n} field`, select("ff", fields.map((f) => [f, f]), name)),
    field(`Filter ${n} operator`, select("fo", OPERATORS, op)),
    field(`Filter ${n} value`, h("input", { name: "fv", value: value || "" })),
    h("button", { type: "button", on: { click: () => onRemove(row) } }, `Remove filter ${n}`),
  );
  return row;
}

/** The toolbar: search, filter builder, sort, status and page size; submitting navigates. */
function toolbar(ctx, info, state) {
  const model = info.name;
  const filterable = BASE_FILTERABLE.concat((info.fields || []).filter((f) => f.type !== "json" && f.type !== "file").map((f) => f.name));
  const sortable = BASE_SORTABLE.concat(
    (info.fields || []).filter((f) => f.indexed && f.type !== "json" && f.type !== "array").map((f) => f.name),
  );
  const sort = state.rest.sort || "-created_at";
  const sortField = sort.replace(/^-/, "");
  const filtersBox = h("div", { class: "filters" });
  let rows = state.filters.slice();
  const drawFilters = (focusLast) => {
    clear(filtersBox);
    rows.forEach((f, i) =>
      filtersBox.append(
        filterRow(filterable, f, i + 1, () => {
          rows = readFilterRows(filtersBox);
          rows.splice(i, 1);
          drawFilters(false);
          addButton.focus();
        }),
      ),
    );
    if (focusLast) {
      const selects = filtersBox.querySelectorAll('select[name="ff"]');
      if (selects.length) selects[selects.length - 1].focus();
    }
  };
  const addButton = h(
    "button",
    {
      type: "button",
      on: {
        click: () => {
          rows = readFilterRows(filtersBox);
          rows.push([filterable[0], "eq", ""]);
          drawFilters(true);
        },
      },
    },
    "Add filter",
  );
  drawFilters(false);
  const search = info.searchable ? h("input", { name: "q", type: "search", value: state.rest.q || "" }) : null;
  const sortSel = select("sort", sortable.map((f) => [f, f]).concat(sortable.includes(sortField) ? [] : [[sortField, sortField]]), sortField);
  const dirSel = select("dir", [["desc", "descending"], ["asc", "ascending"]], sort.startsWith("-") ? "desc" : "asc");
  const statusSel = select("status", STATUSES.map(([v, label]) => [v, label]), state.statusChoice);
  const sizeSel = select("limit", PAGE_SIZES.map((n) => [String(n), String(n)]), state.rest.limit || "20");
  // Sort, status, page size and the filter builder fold away behind a summary on a narrow
  // screen (open by default on a wide one), so a phone shows the records without a
  // screenful of controls above them; the summary says how many of them are in force.
  const active = state.filters.length + (state.statusChoice ? 1 : 0) + (state.rest.sort ? 1 : 0) + (state.rest.limit ? 1 : 0);
  const more = h(
    "details",
    { class: "more", open: window.matchMedia(WIDE).matches },
    h("summary", null, "Sort and filters", active ? ` (${active} in force)` : ""),
    h("div", { class: "toolbar" }, field("Sort by", sortSel), field("Direction", dirSel), field("Status", statusSel), field("Page size", sizeSel)),
    filtersBox,
    h("div", { class: "actions" }, addButton),
  );
  const form = h(
    "form",
    { class: "card", role: "search", "aria-label": `Find ${model} records`, novalidate: true },
    search ? h("div", { class: "toolbar" }, field("Search", search, "every word, in the searchable fields")) : null,
    more,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary" }, "Apply"),
      h("a", { href: pageHash(model) }, "Reset"),
    ),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const filters = readFilterRows(filtersBox).filter(([, , v]) => v !== "");
    const rest = {
      q: search ? search.value.trim() : "",
      filter: state.rest.filter,
      sort: sortSel.value === "created_at" && dirSel.value === "desc" ? "" : (dirSel.value === "desc" ? "-" : "") + sortSel.value,
      limit: sizeSel.value === "20" ? "" : sizeSel.value,
    };
    ctx.navigate(hashOf(model, toPairs({ filters, rest, statusChoice: statusSel.value })));
  });
  return form;
}

function readFilterRows(box) {
  return Array.from(box.querySelectorAll(".filter-row")).map((row) => [
    row.querySelector('[name="ff"]').value,
    row.querySelector('[name="fo"]').value,
    row.querySelector('[name="fv"]').value,
  ]);
}

/** Whether `rec` belongs under the status choice (the one filter the stream does not get). */
function statusFits(choice, rec) {
  if (choice === "all") return true;
  if (!choice) return rec.status !== "deleted";
  return rec.status === choice;
}

export default async function render(ctx) {
  const model = ctx.params.model;
  ctx.setTitle(model);
  const info = await modelInfo(ctx.api, model);
  if (!ctx.current()) return;
  const state = readQuery(ctx.query);
  const pairs = toPairs(state);
  const live = h("span", { class: "badge muted live", role: "status" }, "connecting");
  ctx.main.append(
    h("h1", null, `Records of ${model}`),
    h(
      "div",
      { class: "actions" },
      info.can && info.can.create ? h("a", { class: "button primary", href: `${pageHash(model)}/new` }, "New record") : null,
      h("a", { href: "#/" }, "All models"),
      h("span", { class: "muted" }, "Changes: "),
      live,
    ),
    toolbar(ctx, info, state),
  );
  const out = h("div", { id: "records-out" });
  ctx.main.append(out);
  let result;
  try {
    result = await ctx.api.api("GET", apiPath(model), {
      query: queryObject(pairs.concat(state.rest.cursor ? [] : [["count", "true"]])),
    });
  } catch (err) {
    if (!ctx.current()) return;
    if (err.status === 401) throw err;
    live.textContent = "off";
    out.append(errorNotice(err), h("p", null, h("a", { href: pageHash(model) }, "Show the list without filters")));
    return;
  }
  if (!ctx.current()) return;
  const cols = columnsOf(info);
  const tbody = h("tbody", null, (result.data || []).map((rec) => rowOf(model, cols, rec)));
  let total = result.page && typeof result.page.total === "number" ? result.page.total : null;
  const totalText = h("p", { id: "records-total" });
  const shown = () => {
    const n = tbody.rows.length;
    totalText.textContent = total === null ? `${n} shown on this page` : `${total} ${total === 1 ? "record" : "records"} in all; ${n} shown`;
  };
  shown();
  const firstPage = !state.rest.cursor;
  const nextCursor = result.page && result.page.next_cursor;
  const cursorHash = (cursor) => {
    const p = pairs.filter(([k]) => k !== "cursor");
    if (cursor) p.push(["cursor", cursor]);
    return hashOf(model, p);
  };
  const empty = h("p", { class: "muted", hidden: tbody.rows.length > 0 }, "No records match.");
  out.append(
    totalText,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { "aria-label": `${model} records` },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            h("th", { scope: "col" }, "Name"),
            h("th", { scope: "col" }, "Status"),
            cols.map((f) => h("th", { scope: "col" }, f.name)),
            h("th", { scope: "col" }, "Updated"),
          ),
        ),
        tbody,
      ),
    ),
    empty,
    h(
      "nav",
      { class: "pager", "aria-label": "Pages" },
      firstPage ? null : h("a", { href: cursorHash(null) }, "First page"),
      nextCursor ? h("a", { href: cursorHash(nextCursor) }, "Next page") : h("span", { class: "muted" }, "Last page"),
    ),
  );

  // Live updates. Inserting a new record is right only where it would sort: the first page
  // of the default, newest-first order, without a search (which the stream cannot match).
  const canInsert = firstPage && !state.rest.sort && !state.rest.q && !state.rest.filter;
  const flash = (tr) => {
    tr.classList.add("flash");
    setTimeout(() => tr.classList.remove("flash"), FLASH_MS);
  };
  const find = (id) => Array.from(tbody.rows).find((tr) => tr.dataset.id === id);
  const onEvent = (type, rec) => {
    if (!rec || !rec.id) return;
    const existing = find(rec.id);
    const fits = type !== "purged" && statusFits(state.statusChoice, rec);
    const label = rec.name || rec.id;
    if (existing && !fits) {
      existing.remove();
      if (total !== null) total -= 1;
      announce(`${label} ${type}`);
    } else if (existing) {
      const tr = rowOf(model, cols, rec);
      existing.replaceWith(tr);
      flash(tr);
      announce(`${label} ${type}`);
    } else if (fits && canInsert && (type === "created" || type === "restored")) {
      const tr = rowOf(model, cols, rec);
      tbody.prepend(tr);
      flash(tr);
      if (total !== null) total += 1;
      announce(`${label} ${type}`);
    } else {
      return;
    }
    empty.hidden = tbody.rows.length > 0;
    shown();
  };
  const hash = window.location.hash;
  const reload = h("button", { type: "button", on: { click: () => ctx.navigate(hash) } }, "Reload the list");
  const missed = notice("warn", h("p", null, "Some changes were missed while offline."), reload);
  const stop = follow(
    ctx,
    model,
    state.filters.map(([name, op, value]) => [op === "eq" ? name : `${name}[${op}]`, value]).concat(state.rest.filter ? [["filter", state.rest.filter]] : []),
    onEvent,
    (s) => {
      live.textContent = s;
      live.className = ["badge", "live", s === "live" ? "ok" : "warn"].join(" ");
    },
    () => {
      // One notice however many resets: the list is stale either way until reloaded.
      if (missed.isConnected) return;
      out.prepend(missed);
    },
  );
  ctx.onCleanup(stop);
}
