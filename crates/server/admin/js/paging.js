// Cursor paging and plain tables for the admin pages. The API pages with opaque cursors
// (`page.next_cursor`), which only go forward, so "Previous" replays the cursors seen.

import { h, clear } from "./ui.js";

/**
 * A pager over a cursor-paged list. `load(cursor)` fetches and draws one page and answers
 * the API's `page` object. Answers {node, reload, first}: `node` holds the Previous/Next
 * buttons and the page number.
 */
export function cursorPager(load, label = "Pages") {
  const seen = [null];
  let index = 0;
  // One load at a time: a second click on Next while the first is loading would otherwise
  // ask for a page whose cursor is not known yet (and get the first page, labelled as a
  // later one). Clicks while loading are ignored; reload/first wait their turn.
  let busy = null;
  const prev = h("button", { type: "button", on: { click: () => busy || go(() => index - 1) } }, "Previous");
  const next = h("button", { type: "button", on: { click: () => busy || go(() => index + 1) } }, "Next");
  const where = h("span", { class: "muted" });
  const node = h("nav", { class: "pager", "aria-label": label }, prev, where, next);
  /** Shows page `to()` (read when its turn comes, so a queued reload sees the page then shown). */
  function go(to, focusAfter = true) {
    const run = async () => {
      index = Math.max(0, Math.min(to(), seen.length - 1));
      node.setAttribute("aria-busy", "true");
      try {
        const page = await load(seen[index]);
        const more = !!(page && page.next_cursor);
        seen.length = index + 1;
        if (more) seen.push(page.next_cursor);
        prev.disabled = index === 0;
        next.disabled = !more;
        where.textContent = `Page ${index + 1}`;
        if (focusAfter && document.activeElement && document.activeElement.disabled) {
          (more ? next : prev).focus();
        }
      } finally {
        node.removeAttribute("aria-busy");
      }
    };
    const turn = (busy || Promise.resolve()).then(run, run);
    busy = turn;
    turn.then(
      () => busy === turn && (busy = null),
      () => busy === turn && (busy = null),
    );
    return turn;
  }
  return {
    node,
    /** Shows the first page again (after a filter changed). */
    first: () => go(() => 0, false),
    /** Shows the current page again (after a change on it). */
    reload: () => go(() => index, false),
  };
}

/** A table in a scrolling wrapper: `headers` as strings, `rows` as arrays of cells. */
export function table(caption, headers, rows, empty = "Nothing here.") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h(
    "div",
    // Focusable and named, so a table that scrolls sideways on a phone can be scrolled
    // from the keyboard.
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h(
      "table",
      null,
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", null, h("tr", null, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", null, rows.map((r) => (r instanceof Node ? r : h("tr", null, r.map((c) => h("td", null, c)))))),
    ),
  );
}

/** Replaces the contents of `slot` with `nodes`. */
export function show(slot, ...nodes) {
  return clear(slot, ...nodes);
}
