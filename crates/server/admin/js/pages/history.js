// A record's history: its audit entries, newest first, each field's change from → to.
// Anyone who may read the record may read this; the API hides what they may not see.

import { h, clear, notice, errorText, when } from "../ui.js";
import { cursorPager, table } from "../paging.js";
import { changeLines } from "../changes.js";

export default async function render(ctx) {
  const { model, id } = ctx.params;
  ctx.setTitle(`History of ${model} ${id}`);
  const recordHref = `#/m/${encodeURIComponent(model)}/${encodeURIComponent(id)}`;
  const status = h("div");
  const list = h("div", { id: "history-list" });
  const pager = cursorPager(async (cursor) => {
    try {
      const r = await ctx.api.api("GET", `/${encodeURIComponent(model)}/${encodeURIComponent(id)}/history`, {
        query: { limit: 20, cursor },
      });
      if (!ctx.current()) return r.page;
      clear(list, table(`History of ${model} ${id}`, ["Seq", "At", "By", "Action", "Changes"], r.data.map(row), "No history for this record."));
      return r.page;
    } catch (err) {
      if (err.status === 401) throw err;
      clear(status, notice("error", h("p", null, err.status === 404 ? "No such record, or you may not read it." : errorText(err))));
      clear(list);
      return null;
    }
  }, "History pages");
  ctx.main.append(
    h("h1", null, `History of ${model} `, h("code", null, id)),
    h("p", null, h("a", { href: recordHref }, "Back to the record"), " · ", h("a", { href: `#/m/${encodeURIComponent(model)}` }, `All ${model} records`)),
    status,
    list,
    pager.node,
  );
  await pager.first();
}

function row(e) {
  const lines = changeLines(e.changes);
  const actor = e.actor || {};
  return [
    String(e.seq),
    when(e.at),
    `${actor.label || ""} (${actor.kind || "?"})`,
    h("code", null, e.action),
    lines.length ? h("ul", { class: "changes" }, lines.map((l) => h("li", null, l))) : h("span", { class: "muted" }, "—"),
  ];
}
