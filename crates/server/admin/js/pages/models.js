// The models page (#/): every declared model the caller may read, with how many records it
// holds, how many fields it declares, whether it is searchable, and a link to its table.
// The counts are asked for in parallel after the table shows, so one slow model never
// holds the page back.
import { h, notice, errorText } from "../ui.js";
import { apiPath, pageHash } from "./model-info.js";

/** The record count of `model` as the caller sees it (`count=true` → `page.total`). */
async function countOf(api, model) {
  const r = await api.api("GET", apiPath(model), { query: { limit: 1, count: "true" } });
  return r.page && typeof r.page.total === "number" ? r.page.total : null;
}

function row(api, m) {
  const count = h("td", { class: "num", dataset: { count: m.name } }, h("span", { class: "muted" }, "…"));
  countOf(api, m.name)
    .then((n) => {
      count.textContent = n === null ? "?" : String(n);
    })
    .catch((err) => {
      count.textContent = "—";
      count.title = errorText(err);
    });
  return h(
    "tr",
    null,
    h("th", { scope: "row" }, h("a", { href: pageHash(m.name) }, m.name)),
    count,
    h("td", { class: "num" }, String((m.fields || []).length)),
    h("td", null, m.searchable ? "yes" : "no"),
    h("td", null, m.can && m.can.create ? "yes" : "no"),
  );
}

export default async function render(ctx) {
  ctx.setTitle("Models");
  const r = await ctx.api.api("GET", "/models");
  if (!ctx.current()) return;
  const models = (r.data || []).filter((m) => !m.can || m.can.read);
  ctx.main.append(h("h1", null, "Models"));
  if (!models.length) {
    ctx.main.append(notice("info", h("p", null, "No model is readable with this account.")));
    return;
  }
  ctx.main.append(
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { "aria-label": "Models" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            h("th", { scope: "col" }, "Model"),
            h("th", { scope: "col", class: "num" }, "Records"),
            h("th", { scope: "col", class: "num" }, "Fields"),
            h("th", { scope: "col" }, "Searchable"),
            h("th", { scope: "col" }, "You may create"),
          ),
        ),
        h(
          "tbody",
          null,
          models.map((m) => row(ctx.api, m)),
        ),
      ),
    ),
  );
}
