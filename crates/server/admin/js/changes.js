// Audit `changes` as people read them: `{"field": {"from", "to"}}` becomes
// "field: old → new" (only "new" on a create, only "old" on a purge).

import { h, short } from "./ui.js";

/** One line per changed field. */
export function changeLines(changes) {
  if (!changes || typeof changes !== "object") return [];
  return Object.entries(changes).map(([name, c]) => {
    if (c && typeof c === "object" && ("from" in c || "to" in c)) {
      if (!("from" in c)) return `${name}: ${short(c.to, 60)}`;
      if (!("to" in c)) return `${name}: ${short(c.from, 60)} (removed)`;
      return `${name}: ${short(c.from, 60)} → ${short(c.to, 60)}`;
    }
    return `${name}: ${short(c, 60)}`;
  });
}

/** A short summary with the full changes behind a disclosure (keyboard-operable). */
export function changesCell(changes, max = 3) {
  const lines = changeLines(changes);
  if (!lines.length) return h("span", { class: "muted" }, "—");
  const head = lines.slice(0, max).join("; ") + (lines.length > max ? `; +${lines.length - max} more` : "");
  return h("details", null, h("summary", null, head), h("pre", null, JSON.stringify(changes, null, 2)));
}
